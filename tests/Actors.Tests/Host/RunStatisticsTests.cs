using Actorvisor.Actors.Cpu;
using Actorvisor.Host;

namespace Actorvisor.Actors.Tests.Host;

public class RunStatisticsTests
{
    [Fact]
    public void TheStatsLineGivesTheRateTheReadWaitsAndThePeakRss()
    {
        var totals = new VcpuTotals();
        totals.AddInstructions(30_000_000);
        totals.AddInstructions(10_000_000);
        totals.AddDeviceReads(4, System.Diagnostics.Stopwatch.Frequency / 1000); // 1 ms over 4 reads
        var line = RunStatistics.Format(totals, TimeSpan.FromSeconds(2));
        Assert.Contains("40,000,000 guest instructions in 2.00 s (20.0 MIPS)", line);
        Assert.Contains("4 device reads waited 0.00 s (250 µs each)", line);
        Assert.Matches(@"peak RSS \d+ MiB", line); // Linux: VmHWM of this test process
    }

    [Fact]
    public void TheFirstVcpuStartIsTimedFromTheProcessStartAndKeptOnce()
    {
        var totals = new VcpuTotals();
        Assert.DoesNotContain("first instruction", RunStatistics.Format(totals, TimeSpan.FromSeconds(1)));
        totals.MarkStarted();
        var first = totals.FirstStart!.Value;
        Thread.Sleep(20);
        totals.MarkStarted(); // a second vCPU's start does not move it
        Assert.Equal(first, totals.FirstStart);
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        var expected = first - self.StartTime.ToUniversalTime();
        var after = RunStatistics.FirstInstructionAfterStart(totals)!.Value;
        Assert.Equal(expected, after);
        Assert.InRange(after.TotalMilliseconds, 0, (DateTime.UtcNow - self.StartTime.ToUniversalTime()).TotalMilliseconds + 20);
        Assert.Matches(@"; first instruction \d+ ms after process start; [\d,]+ blocks compiled$", RunStatistics.Format(totals, TimeSpan.FromSeconds(1)));
    }
}
