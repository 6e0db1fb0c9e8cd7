namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// One boot of the default guest with `clocksource=hpet` on four vCPUs (two sockets of two cores) for
/// <see cref="LinuxClockTests"/> and <see cref="LinuxSmpTests"/>: the /init reports the CPUs Linux brought up,
/// measures its uptime across a 10 s sleep, reads and writes the RTC with hwclock and sets an RTC alarm
/// through sysfs. Each console line is stamped with the host's elapsed time when it arrives, so the guest's
/// clock can be held against the host's.
/// </summary>
public sealed class LinuxClockFixture
{
    public const string Init = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        dmesg -n 1
        echo "CS: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
        echo "NPROC: $(nproc)"
        echo "SOCKETS: $(grep 'physical id' /proc/cpuinfo | sort -u | wc -l)"
        echo "CORES: $(grep -m1 'cpu cores' /proc/cpuinfo | cut -d: -f2)"
        echo "SIBLINGS: $(grep -m1 'siblings' /proc/cpuinfo | cut -d: -f2)"
        echo "HWCLOCK-R: $(hwclock -r -u 2>&1)"
        read up rest < /proc/uptime; echo "UPTIME0: $up"
        sleep 10
        read up rest < /proc/uptime; echo "UPTIME1: $up"
        echo "RTC8-BEFORE: $(grep ' 8:' /proc/interrupts)"
        echo +2 > /sys/class/rtc/rtc0/wakealarm
        echo "WAKEALARM-SET: [$(cat /sys/class/rtc/rtc0/wakealarm)]"
        sleep 4
        echo "WAKEALARM-AFTER: [$(cat /sys/class/rtc/rtc0/wakealarm)]"
        echo "RTC8-AFTER: $(grep ' 8:' /proc/interrupts)"
        date -u -s "2030-01-02 03:04:05" > /dev/null
        hwclock -w -u
        echo "HWCLOCK-AFTER-W: $(hwclock -r -u 2>&1)"
        echo "DATE-AFTER-R: $(date -u '+%Y-%m-%d %H:%M:%S')"
        echo "CLOCK-PROBE-END"
        poweroff -f
        """;

    /// <summary>Two sockets of two cores: the boot also shows the topology Linux sees.</summary>
    public const string Cpus = "cpus=4,sockets=2,cores=2";

    public string? SkipReason { get; } = GuestBoot.SkipReason;
    public string Console => Result?.Console ?? "";
    public int ExitStatus => Result?.ExitStatus ?? -1;
    /// <summary>Each complete console line with the host time since the run started when it arrived.</summary>
    public IReadOnlyList<(TimeSpan At, string Line)> Lines => Result?.Lines ?? [];
    public GuestBootResult? Result { get; }

    public LinuxClockFixture()
    {
        if (SkipReason is null)
            Result = GuestBoot.Run(Init, "console=ttyS0 panic=-1 clocksource=hpet", ["--no-reboot", "-c", Cpus]);
    }
}
