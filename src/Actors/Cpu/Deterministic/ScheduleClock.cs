using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Time;

namespace Actorvisor.Actors.Cpu.Deterministic;

/// <summary>
/// The time of the deterministic schedule: the instructions every vCPU has retired, at a fixed rate, plus the
/// idle time skipped while all vCPUs waited for a timer. Inside a slice it counts the running vCPU's
/// instructions too, so a device the guest polls sees time advance with each instruction it executes, the
/// same way every run. Timers (<see cref="CreateTimer"/>, and <see cref="Timers"/> for devices) fire on the
/// scheduler's thread at the first instruction boundary at or after their deadline. One timestamp unit is
/// a nanosecond. Only the scheduler thread (and what it runs inline) reads it while the VM runs.
/// </summary>
public sealed class ScheduleClock : TimeProvider
{
    private readonly long _instructionsPerSecond;
    private long _idleNanoseconds;
    private long _retired;
    private SoftwareCpu? _running;
    private long _sliceStart;

    /// <param name="epoch">Wall-clock time at virtual time 0: what the RTC shows at power-on.</param>
    public ScheduleClock(DateTimeOffset epoch, long instructionsPerSecond = 1_000_000_000)
    {
        if (instructionsPerSecond <= 0) throw new ArgumentOutOfRangeException(nameof(instructionsPerSecond));
        Epoch = epoch;
        _instructionsPerSecond = instructionsPerSecond;
        Timers = new DeterministicTimerService(this);
    }

    public DateTimeOffset Epoch { get; }
    public DeterministicTimerService Timers { get; }

    /// <summary>Instructions retired by all vCPUs, the running slice included.</summary>
    public long Retired => _retired + (_running is { } c ? c.InstructionCount - _sliceStart : 0);

    public override long TimestampFrequency => 1_000_000_000;

    public override long GetTimestamp() => _idleNanoseconds + (long)((Int128)Retired * 1_000_000_000 / _instructionsPerSecond);

    public override DateTimeOffset GetUtcNow() => Epoch + TimeSpan.FromTicks(GetTimestamp() / 100);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        new ScheduleTimer(this, callback, state, dueTime, period);

    public void BeginSlice(SoftwareCpu cpu)
    {
        _running = cpu;
        _sliceStart = cpu.InstructionCount;
    }

    public void EndSlice()
    {
        _retired = Retired;
        _running = null;
    }

    /// <summary>Instructions still to retire before the clock reads at least <paramref name="timestamp"/> (at least 1).</summary>
    public long InstructionsUntil(long timestamp)
    {
        var needed = (Int128)(timestamp - _idleNanoseconds) * _instructionsPerSecond;
        var retiredAt = (long)((needed + 999_999_999) / 1_000_000_000);
        return Math.Max(1, retiredAt - Retired);
    }

    /// <summary>All vCPUs wait: time jumps to <paramref name="timestamp"/> without instructions.</summary>
    public void SkipTo(long timestamp)
    {
        var now = GetTimestamp();
        if (timestamp > now) _idleNanoseconds += timestamp - now;
    }

    /// <summary>A <see cref="TimeProvider"/> timer on the schedule's timer queue (the LAPIC timer uses one).</summary>
    private sealed class ScheduleTimer : ITimer
    {
        private readonly ScheduleClock _clock;
        private readonly TimerCallback _callback;
        private readonly object? _state;
        private TimerHandle? _pending;
        private TimeSpan _period;
        private bool _disposed;

        public ScheduleTimer(ScheduleClock clock, TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            _clock = clock;
            _callback = callback;
            _state = state;
            Change(dueTime, period);
        }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (_disposed) return false;
            _pending?.Cancel();
            _pending = null;
            _period = period;
            if (dueTime != Timeout.InfiniteTimeSpan) Arm(_clock.GetTimestamp() + Nanoseconds(dueTime));
            return true;
        }

        private void Arm(long deadline) => _pending = _clock.Timers.Schedule(deadline, () =>
        {
            if (_period != Timeout.InfiniteTimeSpan && _period > TimeSpan.Zero) Arm(deadline + Nanoseconds(_period));
            _callback(_state);
        });

        private static long Nanoseconds(TimeSpan t) => Math.Max(0, t.Ticks) * 100;

        public void Dispose()
        {
            _disposed = true;
            _pending?.Cancel();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
