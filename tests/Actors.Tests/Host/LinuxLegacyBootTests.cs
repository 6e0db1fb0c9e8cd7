using System.Globalization;
using System.Text.RegularExpressions;
using Actorvisor.Host.Vm;
using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Debian's kernel with `noapic` on two vCPUs (<see cref="LinuxLegacyBootFixture"/>): the 8259 pair carries
/// every device interrupt, the ACPI PM timer keeps time, and a guest reboot ends the run with status 0 under
/// --no-reboot.
/// </summary>
[Collection(GuestBoot.Collection)]
public class LinuxLegacyBootTests(LinuxLegacyBootFixture fixture, ITestOutputHelper output)
{
    private GuestBootResult Boot()
    {
        Skip.If(fixture.SkipReason is not null, fixture.SkipReason);
        var r = fixture.Result!;
        output.WriteLine($"marker after {r.MarkerAfter?.TotalSeconds:F1} s; exit {r.ExitStatus}; {r.Stderr}");
        return r;
    }

    private static (TimeSpan At, string Value) Line(GuestBootResult r, string key)
    {
        var hit = r.LineStarting(key + ":");
        Assert.True(hit is not null, $"no {key} line on the console");
        return (hit.Value.At, hit.Value.Line[(key.Length + 1)..].Trim());
    }

    [SkippableFact]
    public void TheEightPairCarriesTheInterruptsOfBothVcpus()
    {
        var r = Boot();
        Assert.Equal("2", Line(r, "NPROC").Value);
        var a = r.Console.IndexOf("INTERRUPTS\r\n", StringComparison.Ordinal);
        var b = r.Console.IndexOf("END-INTERRUPTS", StringComparison.Ordinal);
        Assert.True(a >= 0 && b > a, "no /proc/interrupts on the console");
        var table = r.Console[a..b];
        Assert.Matches(@"\n\s*4:(\s+\d+){2}\s+XT-PIC\s+ttyS0", table);
        Assert.DoesNotContain("IO-APIC", table);
    }

    [SkippableFact]
    public void GuestTimeOnThePmTimerAdvancesWithWallTimeWithinOnePercent()
    {
        var r = Boot();
        Assert.Equal("acpi_pm", Line(r, "CS").Value);
        var (at0, up0) = Line(r, "UPTIME0");
        var (at1, up1) = Line(r, "UPTIME1");
        var guest = double.Parse(up1, CultureInfo.InvariantCulture) - double.Parse(up0, CultureInfo.InvariantCulture);
        var host = (at1 - at0).TotalSeconds;
        output.WriteLine($"guest {guest:F3} s, host {host:F3} s");
        // A sleep never ends early; it may end late on a loaded host (a wake-up is not a clock), so only the
        // ratio of guest to host time is held to 1 %.
        Assert.True(guest >= 10.0, $"slept {guest:F3} s of 10");
        Assert.InRange(Math.Abs(guest - host) / host, 0.0, 0.01);
    }

    [SkippableFact]
    public void ARebootEndsTheRunWithStatusZeroUnderNoReboot()
    {
        var r = Boot();
        Assert.Equal((int)VmExitCode.Reset, r.ExitStatus);
        Assert.Contains("the guest rebooted", r.Stderr);
    }
}
