using System.Globalization;
using System.Text.RegularExpressions;
using Actorvisor.Host.Vm;
using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Debian's kernel keeps time on our HPET (`clocksource=hpet`, which also makes Linux take IRQ 0 and 8 by
/// LegacyReplacement and emulate the RTC's interrupts with HPET timer 1), reads and writes our RTC with
/// hwclock, and gets its RTC alarm interrupts.
/// </summary>
[Collection(GuestBoot.Collection)]
public class LinuxClockTests(LinuxClockFixture boot, ITestOutputHelper output)
{
    private void RequireBoot()
    {
        Skip.If(boot.SkipReason is not null, boot.SkipReason);
        Assert.True(boot.Console.Contains("CLOCK-PROBE-END"), $"the probe did not finish:\n{Tail(boot.Console)}");
    }

    private (TimeSpan At, string Value) Line(string key)
    {
        foreach (var (at, line) in boot.Lines)
        {
            var i = line.IndexOf(key + ":", StringComparison.Ordinal);
            if (i >= 0) return (at, line[(i + key.Length + 1)..].Trim());
        }
        Assert.Fail($"no {key} line on the console:\n{Tail(boot.Console)}");
        return default;
    }

    [SkippableFact]
    public void GuestTimeOnTheHpetAdvancesWithWallTimeWithinOnePercentOverTenSeconds()
    {
        RequireBoot();
        Assert.Equal("hpet", Line("CS").Value);
        boot.Result!.AssertGuestKeptWallTime(output);
        Assert.Equal((int)VmExitCode.PowerOff, boot.ExitStatus);
    }

    [SkippableFact]
    public void HwclockReadsTodayFromTheRtcAndWritesIt()
    {
        RequireBoot();
        var now = DateTime.UtcNow;
        var read = Line("HWCLOCK-R").Value;
        output.WriteLine(read);
        Assert.Contains(now.ToString("MMM", CultureInfo.InvariantCulture), read);
        Assert.Contains(now.Year.ToString(CultureInfo.InvariantCulture), read);
        var written = Line("HWCLOCK-AFTER-W").Value;
        output.WriteLine(written);
        // The RTC holds what hwclock -w wrote and keeps counting: it reads the guest's own clock (printed just
        // after) to the second, however long the commands took on a loaded host.
        var m = Regex.Match(written, @"Jan\s+2 (\d\d):(\d\d):(\d\d) 2030");
        Assert.True(m.Success, $"hwclock read back '{written}', not 2 January 2030");
        var rtc = new DateTime(2030, 1, 2, int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), int.Parse(m.Groups[3].Value));
        var guest = DateTime.ParseExact(Line("DATE-AFTER-R").Value, "yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        Assert.True(rtc >= new DateTime(2030, 1, 2, 3, 4, 5), $"the RTC reads {rtc}, before the time written");
        Assert.InRange((guest - rtc).TotalSeconds, 0, 1);
    }

    [SkippableFact]
    public void AnRtcAlarmFiresAndIsCountedOnIrq8()
    {
        RequireBoot();
        Assert.Matches(@"^\[\d+\]$", Line("WAKEALARM-SET").Value);
        Assert.Equal("[]", Line("WAKEALARM-AFTER").Value);   // the alarm went off and cleared itself
        var before = Count(Line("RTC8-BEFORE").Value);
        var after = Count(Line("RTC8-AFTER").Value);
        output.WriteLine($"IRQ 8: {before} -> {after}");
        Assert.True(after > before, $"no rtc0 interrupts: {before} -> {after}");
    }

    private static long Count(string row)
    {
        var m = Regex.Match(row, @"^8:\s+(\d+)\s.*rtc0");
        Assert.True(m.Success, $"IRQ 8 is not rtc0's: '{row}'");
        return long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static string Tail(string s) => s.Length > 3000 ? s[^3000..] : s;
}
