using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Debian's kernel on two vCPUs in the deterministic schedule (<see cref="LinuxDeterministicFixture"/>): a
/// replay of a recorded run repeats it exactly — the same console bytes, instruction count and digest.
/// </summary>
[Collection(GuestBoot.Collection)]
public partial class LinuxDeterministicTests(LinuxDeterministicFixture fixture, ITestOutputHelper output)
    : IClassFixture<LinuxDeterministicFixture>
{
    [GeneratedRegex(@"deterministic run: (\d+) instructions, ([\d.]+) s virtual time, digest ([0-9a-f]{64})")]
    private static partial Regex Summary();

    private (GuestBootResult Recorded, GuestBootResult Replayed) Boots()
    {
        Skip.If(fixture.SkipReason is not null, fixture.SkipReason);
        var (a, b) = (fixture.Recorded!, fixture.Replayed!);
        output.WriteLine($"recorded: exit {a.ExitStatus} in {a.Total.TotalSeconds:F1} s; {a.Stderr}");
        output.WriteLine($"replayed: exit {b.ExitStatus} in {b.Total.TotalSeconds:F1} s; {b.Stderr}");
        return (a, b);
    }

    [SkippableFact]
    public void TheReplayPrintsTheSameConsoleInstructionCountAndDigest()
    {
        var (a, b) = Boots();
        Assert.Equal(1, a.ExitStatus); // poweroff
        Assert.Equal(1, b.ExitStatus);
        Assert.Equal("[" + LinuxDeterministicFixture.Typed + "]", a.Value("GOT").Value);
        Assert.Equal(a.Console, b.Console);
        var sa = Summary().Match(a.Stderr);
        var sb = Summary().Match(b.Stderr);
        Assert.True(sa.Success && sb.Success, "no deterministic-run summary on stderr");
        Assert.Equal(sa.Groups[1].Value, sb.Groups[1].Value);
        Assert.Equal(sa.Groups[3].Value, sb.Groups[3].Value);
        Assert.Equal(1, File.ReadLines(fixture.Log).Count(l => !l.StartsWith('#')));
    }

    [GeneratedRegex(@"fault rule '([^']+)': matched (\d+), fired (\d+)[^\n]*")]
    private static partial Regex FaultReport();

    [SkippableFact]
    public void TheReplayInjectsTheSameFaultsAtTheSameTimes()
    {
        var (a, b) = Boots();
        var ra = FaultReport().Matches(a.Stderr).Select(m => m.Value).ToArray();
        var rb = FaultReport().Matches(b.Stderr).Select(m => m.Value).ToArray();
        // Each rule of the scenario fired, and the replay's counts and first/last guest times are the record's.
        Assert.Equal(3, ra.Length);
        Assert.All(FaultReport().Matches(a.Stderr), m => Assert.True(long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) > 0, m.Value));
        Assert.Equal(ra, rb);
    }

    [SkippableFact]
    public void BothVcpusRunAndTheRtcStartsAtTheFixedEpoch()
    {
        var (a, _) = Boots();
        Assert.Equal("2", a.Value("NPROC").Value);
        Assert.Equal("2026-01-01T00:00", a.Value("DATE").Value);
    }

    [SkippableFact]
    public void AnIdleSleepTakesItsFullGuestTimeButLittleWallTime()
    {
        var (a, _) = Boots();
        var (at0, up0) = a.Value("UPTIME0");
        var (at1, up1) = a.Value("UPTIME1");
        var guest = double.Parse(up1, CultureInfo.InvariantCulture) - double.Parse(up0, CultureInfo.InvariantCulture);
        Assert.InRange(guest, 5.0, 5.5);
        // Skipped to each timer deadline: far less wall time than the 5 s the guest slept.
        Assert.True((at1 - at0).TotalSeconds < 2.5, $"the sleep took {(at1 - at0).TotalSeconds:F2} s of wall time");
    }
}
