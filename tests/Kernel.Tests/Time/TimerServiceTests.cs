using System.Collections.Concurrent;
using System.Diagnostics;
using Actorvisor.Kernel.Time;
using Microsoft.Extensions.Time.Testing;

namespace Actorvisor.Kernel.Tests.Time;

/// <summary>The kernel timer service: ordering, cancellation, re-arming, drift-free periodic use.</summary>
public class TimerServiceTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 26, 0, 0, 0, TimeSpan.Zero);

    private static long Us(TimeProvider c, long microseconds) => microseconds * c.TimestampFrequency / 1_000_000;

    [Fact]
    public void DueCallbacksRunInDeadlineOrderTiesInSchedulingOrder()
    {
        var clock = new FakeTimeProvider(Start);
        var timers = new DeterministicTimerService(clock);
        var t0 = clock.GetTimestamp();
        var order = new List<string>();
        timers.Schedule(t0 + Us(clock, 300), () => order.Add("c"));
        timers.Schedule(t0 + Us(clock, 100), () => order.Add("a"));
        timers.Schedule(t0 + Us(clock, 200), () => order.Add("b1"));
        timers.Schedule(t0 + Us(clock, 200), () => order.Add("b2"));

        clock.Advance(TimeSpan.FromMicroseconds(150));
        Assert.Equal(1, timers.RunDue());
        Assert.Equal(["a"], order);
        clock.Advance(TimeSpan.FromMicroseconds(1000));
        Assert.Equal(3, timers.RunDue());
        Assert.Equal(["a", "b1", "b2", "c"], order);
        Assert.Null(timers.NextDeadline);
    }

    [Fact]
    public void ACancelledTimerNeverRunsAndCancelSaysWhetherItWasPending()
    {
        var clock = new FakeTimeProvider(Start);
        var timers = new DeterministicTimerService(clock);
        var ran = 0;
        var h = timers.Schedule(clock.GetTimestamp() + Us(clock, 10), () => ran++);
        var kept = timers.Schedule(clock.GetTimestamp() + Us(clock, 20), () => ran += 10);
        Assert.True(h.Cancel());
        Assert.False(h.Cancel());
        Assert.Equal(kept.Deadline, timers.NextDeadline);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        timers.RunDue();
        Assert.Equal(10, ran);
        Assert.True(kept.HasFired);
        Assert.False(kept.Cancel()); // too late: it ran
    }

    [Fact]
    public void ReArmingFromTheCallbackAtAbsoluteDeadlinesDoesNotDrift()
    {
        // A 1 kHz tick computed as start + k * period, advanced in uneven steps: after one second exactly
        // 1000 ticks have fired and each ran with the clock at or after its own deadline.
        var clock = new VirtualClock(Start);
        var timers = new DeterministicTimerService(clock);
        var start = clock.GetTimestamp();
        var period = Us(clock, 1000);
        var fired = new List<(long Deadline, long At)>();
        long k = 0;
        void Arm()
        {
            var deadline = start + ++k * period;
            timers.Schedule(deadline, () => { fired.Add((deadline, clock.GetTimestamp())); Arm(); });
        }
        Arm();
        var rng = new Random(7);
        while (clock.GetTimestamp() < start + 1_000 * period)
            timers.AdvanceTo(Math.Min(start + 1_000 * period, clock.GetTimestamp() + rng.Next(1, 3_700_000)));
        Assert.Equal(1000, fired.Count);
        Assert.All(fired, f => Assert.Equal(f.Deadline, f.At)); // virtual time stops at each deadline
        Assert.Equal(start + 1000 * period, fired[^1].Deadline);
    }

    [Fact]
    public void VirtualClockFollowsTheInstructionCount()
    {
        var clock = new VirtualClock(Start, instructionsPerSecond: 500_000_000);
        var timers = new DeterministicTimerService(clock);
        var ran = false;
        timers.Schedule(1_000_000, () => ran = true); // 1 ms
        clock.SetInstructions(499_999);
        Assert.Equal(0, timers.RunDue());
        clock.SetInstructions(500_000);
        Assert.Equal(1, timers.RunDue());
        Assert.True(ran);
        Assert.Equal(Start.AddMilliseconds(1), clock.GetUtcNow());
        Assert.Throws<ArgumentOutOfRangeException>(() => clock.SetInstructions(1));
    }

    [Fact]
    public void HostServiceRunsCallbacksOnItsOwnThreadInOrderNotBeforeTheirDeadlines()
    {
        using var timers = new HostTimerService();
        var clock = timers.Clock;
        var now = clock.GetTimestamp();
        var log = new ConcurrentQueue<(int Id, long At, string? Thread)>();
        var done = new CountdownEvent(5);
        var deadlines = new[] { 40, 10, 30, 20, 50 }.Select(ms => now + Us(clock, ms * 1000)).ToArray();
        for (var i = 0; i < deadlines.Length; i++)
        {
            var id = i;
            timers.Schedule(deadlines[i], () => { log.Enqueue((id, clock.GetTimestamp(), Thread.CurrentThread.Name)); done.Signal(); });
        }
        var cancelled = timers.Schedule(now + Us(clock, 25_000), () => log.Enqueue((99, 0, null)));
        Assert.True(cancelled.Cancel());
        Assert.True(done.Wait(TimeSpan.FromSeconds(10)));
        Thread.Sleep(20);
        var entries = log.ToArray();
        Assert.Equal([1, 3, 2, 0, 4], entries.Select(e => e.Id));
        Assert.All(entries, e => Assert.True(e.At >= deadlines[e.Id]));
        Assert.All(entries, e => Assert.Equal("timers", e.Thread));
    }

    [Fact]
    public void HostServicePeriodicTimerKeepsPaceWithTheClock()
    {
        // 2 ms period for 300 ms: absolute deadlines mean a late expiry is caught up, never carried forward.
        using var timers = new HostTimerService();
        var clock = timers.Clock;
        var start = clock.GetTimestamp();
        var period = Us(clock, 2000);
        long count = 0;
        long maxLateness = 0;
        var stop = new ManualResetEventSlim();
        void Arm(long k)
        {
            var deadline = start + k * period;
            timers.Schedule(deadline, () =>
            {
                maxLateness = Math.Max(maxLateness, clock.GetTimestamp() - deadline);
                Interlocked.Increment(ref count);
                if (k < 150) Arm(k + 1); else stop.Set();
            });
        }
        Arm(1);
        Assert.True(stop.Wait(TimeSpan.FromSeconds(10)));
        var elapsed = clock.GetTimestamp() - start;
        Assert.Equal(150, count);
        // The 150th deadline is at 300 ms; finishing far later would mean drift (a loaded host may add some).
        Assert.InRange(elapsed, 150 * period, 150 * period + Us(clock, 100_000));
        Assert.True(maxLateness < Us(clock, 100_000), $"an expiry ran {maxLateness * 1e6 / clock.TimestampFrequency:F0} µs late");
    }
}
