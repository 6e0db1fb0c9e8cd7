using System.Diagnostics;

namespace Actorvisor.Kernel.Time;

/// <summary>
/// The real-time timer service: one dedicated thread ("timers", not a thread-pool thread and not Akka's
/// scheduler, which ticks every 10 ms) that sleeps until the earliest deadline and runs due callbacks in
/// deadline order. It sleeps on a monitor while the deadline is more than <see cref="SpinThreshold"/>
/// away (the monitor's timeout has millisecond granularity) and yields in a loop for the last stretch,
/// which gives deadlines within a few microseconds for the price of up to that much CPU per expiry.
/// </summary>
public sealed class HostTimerService : ITimerService, IDisposable
{
    /// <summary>How close to a deadline the thread stops sleeping and starts yielding.</summary>
    public static readonly TimeSpan SpinThreshold = TimeSpan.FromMilliseconds(1.5);

    private readonly TimerQueue _queue = new();
    private readonly object _lock = new();
    private readonly Thread _thread;
    private readonly long _spinTicks;
    private bool _disposed;

    public TimeProvider Clock { get; }

    /// <summary>Callbacks that threw (the exception is swallowed: one bad callback must not stop every timer).</summary>
    public long FailedCallbacks { get; private set; }
    public long FiredCallbacks { get; private set; }

    public HostTimerService(TimeProvider? clock = null, string name = "timers")
    {
        Clock = clock ?? TimeProvider.System;
        _spinTicks = (long)(SpinThreshold.TotalSeconds * Clock.TimestampFrequency);
        _thread = new Thread(Loop) { IsBackground = true, Name = name, Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    public TimerHandle Schedule(long deadline, Action callback)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var handle = _queue.Add(deadline, callback);
            Monitor.Pulse(_lock); // the new timer may be the earliest
            return handle;
        }
    }

    private void Loop()
    {
        while (true)
        {
            TimerHandle? due;
            lock (_lock)
            {
                while (true)
                {
                    if (_disposed) return;
                    var next = _queue.NextDeadline();
                    var now = Clock.GetTimestamp();
                    if (next is null) { Monitor.Wait(_lock); continue; }
                    if (next.Value <= now) break;
                    var remaining = next.Value - now;
                    if (remaining > _spinTicks)
                    {
                        var ms = (int)Math.Min(int.MaxValue, (remaining - _spinTicks) * 1000 / Clock.TimestampFrequency);
                        Monitor.Wait(_lock, Math.Max(1, ms));
                        continue;
                    }
                    // The last stretch: yield without holding the lock, so Schedule is never held up.
                    Monitor.Exit(_lock);
                    try
                    {
                        while (Clock.GetTimestamp() < next.Value && !Volatile.Read(ref _disposed)) Thread.Yield();
                    }
                    finally
                    {
                        Monitor.Enter(_lock);
                    }
                }
                due = _queue.TakeDue(Clock.GetTimestamp());
            }
            if (due is not null && due.TryFire()) Run(due);
        }
    }

    private void Run(TimerHandle handle)
    {
        try
        {
            handle.Callback();
            FiredCallbacks++;
        }
        catch (Exception e)
        {
            FailedCallbacks++;
            Debug.WriteLine($"timer callback failed: {e}");
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            Monitor.PulseAll(_lock);
        }
        if (Thread.CurrentThread != _thread) _thread.Join();
    }
}
