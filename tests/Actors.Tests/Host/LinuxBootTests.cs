using System.Text.RegularExpressions;
using Actorvisor.Host.Vm;
using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Debian's own kernel and a busybox initramfs boot on our CPU with every device an actor, through
/// `actorvisor run` (one boot, <see cref="LinuxBootFixture"/>, for all of these).
/// </summary>
[Collection(GuestBoot.Collection)]
public class LinuxBootTests(LinuxBootFixture fixture, ITestOutputHelper output)
{
    private GuestBootResult RequireBoot()
    {
        Skip.If(fixture.SkipReason is not null, fixture.SkipReason);
        var r = fixture.Result!;
        output.WriteLine($"marker after {r.MarkerAfter?.TotalSeconds:F1} s; run {r.Total.TotalSeconds:F1} s; exit {r.ExitStatus}");
        output.WriteLine(r.Stderr);
        return r;
    }

    [SkippableFact]
    public void TheInitramfsRunsAndPrintsItsMarker()
    {
        var boot = RequireBoot();
        Assert.True(boot.MarkerAfter is not null, $"no marker on the console:\n{Tail(boot.Console)}");
        Assert.DoesNotContain("Kernel panic", boot.Console);
        Assert.DoesNotContain("Call Trace", boot.Console);
    }

    [SkippableFact]
    public void PoweroffEndsTheRunWithStatusOneThroughAcpiS5()
    {
        var boot = RequireBoot();
        Assert.Contains("ACPI: PM: Preparing to enter system sleep state S5", boot.Console);
        Assert.Equal((int)VmExitCode.PowerOff, boot.ExitStatus);
    }

    [SkippableFact]
    public void TheConsoleWorksBothWays()
    {
        var boot = RequireBoot();
        Assert.Contains($"GOT:[{LinuxBootFixture.Typed}]", boot.Console);
    }

    /// <summary>
    /// Linux trusts our TSC (invariant, TSC_ADJUST) and keeps time with it; the IOAPIC routes the PIT, and the
    /// LAPIC timer ticks: its count grows across a one-second sleep.
    /// </summary>
    [SkippableFact]
    public void TimeIsKeptByTheTscAndTheTimerInterruptsGrow()
    {
        var boot = RequireBoot();
        Assert.Matches(@"CLOCKSOURCE: tsc\r?\n", boot.Console);
        var first = Section(boot.Console, "INTERRUPTS-1", "INTERRUPTS-2");
        var second = Section(boot.Console, "INTERRUPTS-2", "END-INTERRUPTS");
        Assert.Matches(@"\n\s*0:\s+\d+\s+IO-APIC\s+2-edge\s+timer", first);
        // The SCI is level-triggered (MADT override), so the IOAPIC shows a level line too.
        Assert.Matches(@"\n\s*9:\s+\d+\s+IO-APIC\s+9-fasteoi\s+acpi", first);
        var (loc1, loc2) = (Count(first, "LOC"), Count(second, "LOC"));
        output.WriteLine($"LOC {loc1} -> {loc2}");
        Assert.True(loc1 > 0, "no local timer interrupts");
        Assert.True(loc2 > loc1, $"the local timer count did not grow over a second: {loc1} -> {loc2}");
    }

    [SkippableFact]
    public void LinuxFoundThePlatformInTheAcpiTables()
    {
        var boot = RequireBoot();
        Assert.Contains("ACPI: Using ACPI (MADT) for SMP configuration information", boot.Console);
        Assert.Contains("IOAPIC[0]: apic_id 0, version 17, address 0xfec00000, GSI 0-31", boot.Console);
        Assert.Contains("hpet0: 8 comparators, 64-bit 10.000000 MHz counter", boot.Console);
        // COM1 through the DSDT's PNP0501 device, its interrupt through IOAPIC pin 4.
        Assert.Contains("00:00: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A", boot.Console);
        Assert.Matches(@"\n\s*4:\s+\d+\s+IO-APIC\s+4-edge\s+ttyS0", boot.Console);
    }

    [SkippableFact]
    public void GuestTimeOnTheTscAdvancesWithWallTimeWithinOnePercentOverTenSeconds()
    {
        var boot = RequireBoot();
        boot.AssertGuestKeptWallTime(output);
    }

    private static string Section(string text, string from, string to)
    {
        var a = text.IndexOf(from + "\r\n", StringComparison.Ordinal);
        var b = text.IndexOf(to + "\r\n", StringComparison.Ordinal);
        Assert.True(a >= 0 && b > a, $"no {from}..{to} section in the console output");
        return text[a..b];
    }

    private static long Count(string table, string row)
    {
        var m = Regex.Match(table, $@"\n\s*{row}:\s+(\d+)");
        Assert.True(m.Success, $"no {row} row in /proc/interrupts");
        return long.Parse(m.Groups[1].Value);
    }

    private static string Tail(string s) => s.Length > 3000 ? s[^3000..] : s;
}
