namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Two boots of the default guest in the deterministic schedule, for <see cref="LinuxDeterministicTests"/>:
/// the first with `--record`, a line typed at the guest's prompt; the second with `--replay` of that log and
/// nothing typed. Two vCPUs, so the schedule's interleaving is part of what must repeat. The /init prints the
/// date (the RTC's fixed power-on time), reads the line, sleeps 5 s (idle, skipped in virtual time) and
/// powers off. Both runs inject the timer faults of examples/faults/<see cref="FaultsFile"/> with its seed.
/// </summary>
public sealed class LinuxDeterministicFixture : IDisposable
{
    public const string Prompt = "TYPE-A-LINE:";
    public const string Typed = "replay-me-7";

    public const string Init = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        echo "MARKER: actorvisor guest up"
        echo "NPROC: $(nproc)"
        echo "DATE: $(date -u +%Y-%m-%dT%H:%M)"
        echo "TYPE-A-LINE:"
        read line
        echo "GOT: [$line]"
        read up rest < /proc/uptime; echo "UPTIME0: $up"
        sleep 5
        read up rest < /proc/uptime; echo "UPTIME1: $up"
        cat /proc/interrupts
        poweroff -f
        """;

    private const string Cmdline = "console=ttyS0 panic=-1";
    public const string FaultsFile = "late-and-lost-ticks.yaml";

    public string? SkipReason { get; } = GuestBoot.SkipReason;
    public string Log { get; } = Path.Combine(Path.GetTempPath(), $"actorvisor-input-{Environment.ProcessId}-{Guid.NewGuid():N}.log");
    public GuestBootResult? Recorded { get; }
    public GuestBootResult? Replayed { get; }

    public LinuxDeterministicFixture()
    {
        if (SkipReason is not null) return;
        var faults = Path.Combine(LinuxFaultsFixture.Examples, FaultsFile);
        Recorded = GuestBoot.Run(Init, Cmdline, ["-c", "2", "--record", Log, "--faults", faults], Prompt, Typed);
        Replayed = GuestBoot.Run(Init, Cmdline, ["-c", "2", "--replay", Log, "--faults", faults]);
    }

    public void Dispose() => File.Delete(Log);
}
