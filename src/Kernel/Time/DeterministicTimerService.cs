namespace Actorvisor.Kernel.Time;

/// <summary>
/// The deterministic timer service: no thread, no host clock. Time is whatever <see cref="Clock"/> says
/// (a <see cref="VirtualClock"/> driven by the executed-instruction count in the deterministic schedule,
/// or a FakeTimeProvider in tests), and due callbacks run only when the owner calls <see cref="RunDue"/>
/// (or <see cref="AdvanceTo"/>), on the owner's thread, in deadline order, ties in scheduling order. The
/// same inputs therefore fire the same callbacks at the same virtual times on every run.
/// </summary>
public sealed class DeterministicTimerService(TimeProvider clock) : ITimerService
{
    private readonly TimerQueue _queue = new();
    private readonly object _lock = new();

    public TimeProvider Clock { get; } = clock;

    public TimerHandle Schedule(long deadline, Action callback)
    {
        lock (_lock) return _queue.Add(deadline, callback);
    }

    /// <summary>The earliest pending deadline (the deterministic scheduler may run the CPU up to it).</summary>
    public long? NextDeadline
    {
        get { lock (_lock) return _queue.NextDeadline(); }
    }

    /// <summary>Runs every callback due at the clock's present time, including ones they schedule that are already due. Returns how many ran.</summary>
    public int RunDue()
    {
        var ran = 0;
        while (true)
        {
            TimerHandle? due;
            lock (_lock) due = _queue.TakeDue(Clock.GetTimestamp());
            if (due is null) return ran;
            if (!due.TryFire()) continue;
            due.Callback();
            ran++;
        }
    }

    /// <summary>
    /// Moves a <see cref="VirtualClock"/> to <paramref name="timestamp"/> one deadline at a time, running
    /// each callback with the clock standing at its own deadline (as the real service would).
    /// </summary>
    public int AdvanceTo(long timestamp)
    {
        if (Clock is not VirtualClock v) throw new InvalidOperationException("AdvanceTo needs a VirtualClock; advance the clock yourself and call RunDue");
        var ran = 0;
        while (true)
        {
            long? next;
            lock (_lock) next = _queue.NextDeadline();
            if (next is null || next.Value > timestamp) break;
            if (next.Value > v.GetTimestamp()) v.SetTimestamp(next.Value);
            ran += RunDue();
        }
        if (timestamp > v.GetTimestamp()) v.SetTimestamp(timestamp);
        return ran + RunDue();
    }
}

/// <summary>
/// A clock that moves only when told: the time base of the deterministic schedule. One timestamp unit is
/// one nanosecond; <see cref="SetInstructions"/> maps a retired-instruction count to time at a fixed rate.
/// Wall-clock time (for the RTC) is <see cref="Epoch"/> plus the elapsed virtual time.
/// </summary>
public sealed class VirtualClock(DateTimeOffset epoch, long instructionsPerSecond = 1_000_000_000) : TimeProvider
{
    private long _nanoseconds;

    public DateTimeOffset Epoch { get; } = epoch;
    public long InstructionsPerSecond { get; } = instructionsPerSecond;

    public override long TimestampFrequency => 1_000_000_000;
    public override long GetTimestamp() => Volatile.Read(ref _nanoseconds);
    public override DateTimeOffset GetUtcNow() => Epoch + TimeSpan.FromTicks(GetTimestamp() / 100);

    /// <summary>Moves the clock to <paramref name="nanoseconds"/>; time never goes backwards.</summary>
    public void SetTimestamp(long nanoseconds)
    {
        if (nanoseconds < _nanoseconds) throw new ArgumentOutOfRangeException(nameof(nanoseconds), "virtual time never goes backwards");
        Volatile.Write(ref _nanoseconds, nanoseconds);
    }

    /// <summary>Virtual time = instructions retired / <see cref="InstructionsPerSecond"/>.</summary>
    public void SetInstructions(long retired) => SetTimestamp((long)((Int128)retired * 1_000_000_000 / InstructionsPerSecond));
}
