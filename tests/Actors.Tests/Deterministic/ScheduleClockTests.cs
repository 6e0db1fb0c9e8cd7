using Actorvisor.Actors.Cpu.Deterministic;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Time;

namespace Actorvisor.Actors.Tests.Deterministic;

/// <summary>The deterministic schedule's clock: time from retired instructions, idle skips, and timers on it.</summary>
public class ScheduleClockTests
{
    private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private sealed class NoPlatform : ICpuPlatform
    {
        public uint PortRead(int vcpuId, ushort port, int size) => 0;
        public void PortWrite(int vcpuId, ushort port, int size, uint value) { }
        public ulong MmioRead(int vcpuId, ulong address, int size) => 0;
        public void MmioWrite(int vcpuId, ulong address, int size, ulong value) { }
    }

    [Fact]
    public void TimeIsRetiredInstructionsAtTheRateAndCountsTheRunningSlice()
    {
        using var memory = new GuestMemory(1 << 20);
        var cpu = new SoftwareCpu(0, memory, new NoPlatform());
        var clock = new ScheduleClock(Epoch, instructionsPerSecond: 500_000_000); // 2 ns per instruction
        cpu.InstructionCount = 1000;
        clock.BeginSlice(cpu);
        cpu.InstructionCount += 300;
        Assert.Equal(600, clock.GetTimestamp());
        clock.EndSlice();
        cpu.InstructionCount += 50; // outside a slice: not counted
        Assert.Equal(300, clock.Retired);
        Assert.Equal(Epoch + TimeSpan.FromTicks(6), clock.GetUtcNow());

        clock.SkipTo(10_000);
        Assert.Equal(10_000, clock.GetTimestamp());
        clock.SkipTo(5_000); // never backwards
        Assert.Equal(10_000, clock.GetTimestamp());
        // 1000 ns more at 2 ns per instruction.
        Assert.Equal(500, clock.InstructionsUntil(11_000));
        Assert.Equal(1, clock.InstructionsUntil(9_000));
    }

    [Fact]
    public void TimerProviderTimersFireOnTheScheduleAtTheirDeadlinesPeriodicallyUntilDisposed()
    {
        var clock = new ScheduleClock(Epoch);
        var fired = new List<long>();
        var timer = clock.CreateTimer(_ => fired.Add(clock.GetTimestamp()), null, TimeSpan.FromMicroseconds(5), TimeSpan.FromMicroseconds(10));
        for (var t = 1_000; t <= 40_000; t += 1_000)
        {
            clock.SkipTo(t);
            clock.Timers.RunDue();
        }
        Assert.Equal([5_000L, 15_000L, 25_000L, 35_000L], fired);
        timer.Dispose();
        clock.SkipTo(100_000);
        clock.Timers.RunDue();
        Assert.Equal(4, fired.Count);
    }

    [Fact]
    public void ChangingATimerCancelsItsPendingExpiry()
    {
        var clock = new ScheduleClock(Epoch);
        var fired = 0;
        var timer = clock.CreateTimer(_ => fired++, null, TimeSpan.FromMicroseconds(5), Timeout.InfiniteTimeSpan);
        timer.Change(TimeSpan.FromMicroseconds(50), Timeout.InfiniteTimeSpan);
        clock.SkipTo(20_000);
        clock.Timers.RunDue();
        Assert.Equal(0, fired);
        clock.SkipTo(50_000);
        clock.Timers.RunDue();
        Assert.Equal(1, fired);
    }
}
