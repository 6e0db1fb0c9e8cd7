using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Debian's kernel under the fault scenarios of examples/faults/ (<see cref="LinuxFaultsFixture"/>, one boot):
/// each test asserts what the guest shows.
/// </summary>
[Collection(GuestBoot.Collection)]
public class LinuxFaultsTests(LinuxFaultsFixture boot, ITestOutputHelper output) : IClassFixture<LinuxFaultsFixture>
{
    private void RequireBoot()
    {
        Skip.If(boot.SkipReason is not null, boot.SkipReason);
        output.WriteLine($"boot: exit {boot.ExitStatus} in {boot.Total.TotalSeconds:F1} s");
        Assert.True(boot.Failure is null, boot.Failure);
    }

    private JsonObject Rule(string name)
    {
        var rules = boot.FaultsReport!["rules"]!.AsArray();
        return rules.Select(r => r!.AsObject()).Single(r => r["name"]!.GetValue<string>() == name);
    }

    private long Fired(string name) => Rule(name)["fired"]!.GetValue<long>();

    private IEnumerable<string> Klog => boot.Lines.Where(l => l.StartsWith("KLOG:", StringComparison.Ordinal));

    [SkippableFact]
    public void AUartCrashedMidBootIsRestartedAndTheGuestGoesOnPrinting()
    {
        RequireBoot();
        Assert.Equal(1, Fired("crash-uart"));
        var failure = Assert.Single(boot.Stats!["device_failures"]!.AsArray());
        Assert.Equal("uart-0", failure!["device"]!.GetValue<string>());
        Assert.Equal("restart", failure["policy"]!.GetValue<string>());
        // The crash came with the kernel's first console line; all the rest went through the restarted UART:
        // the kernel's boot log, then the /init's lines, the last just before poweroff.
        var lines = boot.Lines.ToList();
        Assert.Contains(lines, l => l.Contains("Run /init as init process"));
        Assert.Contains("MARKER: actorvisor guest up", lines);
        Assert.Equal("still here", boot.Value("AFTER-STORM"));
        Assert.Equal(1, boot.ExitStatus); // poweroff: the VM was not ended by the failure (status 4)
    }

    [SkippableFact]
    public void CorruptedHpetCounterReadsMakeTheClocksourceWatchdogDropTheTscForTheHpet()
    {
        RequireBoot();
        Assert.Equal("tsc", boot.Value("CS-BEFORE"));
        Assert.Equal(6, Fired("flip-hpet-counter-bit"));
        Assert.Contains(Klog, l => l.Contains("timekeeping watchdog on CPU0: Marking clocksource 'tsc' as unstable because the skew is too large"));
        Assert.Contains(Klog, l => l.Contains("Switched to clocksource hpet"));
        Assert.Equal("hpet", boot.Value("CS-AFTER"));
    }

    [SkippableFact]
    public void WithEveryRtcInterruptLostAnAlarmWaitTimesOut()
    {
        RequireBoot();
        Assert.Equal("woke", boot.Value("RTC-WAIT-1"));          // without the rule the same wait ends with the alarm
        Assert.Equal("timed out", boot.Value("RTC-WAIT-2"));
        Assert.Matches(@"^\[\d+\]$", boot.Value("WAKEALARM-AFTER")); // the alarm never went off, so it is still set
        Assert.True(Fired("lose-rtc-irq") > 0);
    }

    [SkippableFact]
    public void AnInterruptStormOnTheIdleSciLineIsSurvived()
    {
        RequireBoot();
        Assert.Contains(Klog, l => l.Contains("irq 9: nobody cared"));
        Assert.Contains(Klog, l => l.Contains("Disabling IRQ #9"));
        Assert.Contains(Klog, l => l.Contains("acpi_irq"));     // the one handler, which found nothing to do
        // Linux counted the storm's interrupts on IRQ 9: at least the 100,000 it needs to call it unhandled.
        var irq9 = boot.Value("IRQ9").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(long.Parse(irq9[1], System.Globalization.CultureInfo.InvariantCulture) >= 100_000, boot.Value("IRQ9"));
        // The host side: the VM answered the control socket while the line was held, and the run ended normally.
        Assert.Equal("running", boot.Stats!["state"]!.GetValue<string>());
        Assert.Equal(1, boot.ExitStatus);
        Assert.DoesNotContain("Unhandled exception", boot.Stderr);
    }

    [SkippableFact]
    public void EveryExampleScenarioIsOneThisBootUses()
    {
        var used = new[] { "crash-uart-once.yaml", "flaky-hpet-counter.yaml", "lose-rtc-interrupts.yaml", "sci-storm.yaml",
            LinuxDeterministicFixture.FaultsFile };
        var files = Directory.GetFiles(LinuxFaultsFixture.Examples, "*.yaml").Select(Path.GetFileName).Order();
        Assert.Equal(used.Order(), files);
    }
}
