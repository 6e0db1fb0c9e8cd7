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

    [SkippableFact]
    public void TheEightPairCarriesTheInterruptsOfBothVcpus()
    {
        var r = Boot();
        Assert.Equal("2", r.Value("NPROC").Value);
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
        Assert.Equal("acpi_pm", r.Value("CS").Value);
        r.AssertGuestKeptWallTime(output);
    }

    [SkippableFact]
    public void ARebootEndsTheRunWithStatusZeroUnderNoReboot()
    {
        var r = Boot();
        Assert.Equal((int)VmExitCode.Reset, r.ExitStatus);
        Assert.Contains("the guest rebooted", r.Stderr);
    }
}
