namespace Actorvisor.Kernel.Time;

/// <summary>
/// The kernel's timer service: runs a callback at an absolute deadline on the clock <see cref="Clock"/>.
/// Deadlines are timestamps of that clock (<see cref="TimeProvider.GetTimestamp"/>, in units of
/// <see cref="TimeProvider.TimestampFrequency"/>), so a periodic user computes each deadline from its start
/// and a tick count and never accumulates drift.
/// Callbacks run on the service's thread (or the thread that advances virtual time) and must be short:
/// actors only <c>Tell</c> themselves a <c>TimerExpired(generation)</c> from them.
/// </summary>
public interface ITimerService
{
    /// <summary>The clock deadlines are measured on; devices read their counters from the same clock.</summary>
    TimeProvider Clock { get; }

    /// <summary>Runs <paramref name="callback"/> once, at or after <paramref name="deadline"/> (a timestamp of <see cref="Clock"/>).
    /// A deadline already past runs as soon as possible.</summary>
    TimerHandle Schedule(long deadline, Action callback);
}

/// <summary>A scheduled callback; <see cref="Cancel"/> it to keep it from running.</summary>
public sealed class TimerHandle
{
    private int _state; // 0 pending, 1 cancelled, 2 fired

    internal TimerHandle(long deadline, long sequence, Action callback)
    {
        Deadline = deadline;
        Sequence = sequence;
        Callback = callback;
    }

    public long Deadline { get; }
    internal long Sequence { get; }
    internal Action Callback { get; }

    public bool IsCancelled => Volatile.Read(ref _state) == 1;
    public bool HasFired => Volatile.Read(ref _state) == 2;

    /// <summary>Returns true if the callback had not run yet and now never will.</summary>
    public bool Cancel() => Interlocked.CompareExchange(ref _state, 1, 0) == 0;

    /// <summary>Claims the handle for running; false if it was cancelled.</summary>
    internal bool TryFire() => Interlocked.CompareExchange(ref _state, 2, 0) == 0;
}

/// <summary>Conversions between durations and clock timestamps.</summary>
public static class TimeStamps
{
    /// <summary>The first timestamp at which <paramref name="units"/> periods of <paramref name="hz"/> have elapsed since <paramref name="origin"/> (rounded up, exact).</summary>
    public static long AfterTicks(TimeProvider clock, long origin, long units, long hz) =>
        origin + (long)(((Int128)units * clock.TimestampFrequency + hz - 1) / hz);

    /// <summary>Whole periods of <paramref name="hz"/> elapsed from <paramref name="origin"/> to <paramref name="now"/> (rounded down).</summary>
    public static long TicksBetween(TimeProvider clock, long origin, long now, long hz) =>
        now <= origin ? 0 : (long)((Int128)(now - origin) * hz / clock.TimestampFrequency);

    public static long FromMicroseconds(TimeProvider clock, double microseconds) =>
        (long)Math.Ceiling(microseconds * clock.TimestampFrequency / 1_000_000.0);
}
