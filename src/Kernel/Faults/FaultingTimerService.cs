using Actorvisor.Kernel.Time;

namespace Actorvisor.Kernel.Faults;

/// <summary>
/// One device's view of the timer service with the fault engine in between: each timer it arms is a
/// <see cref="FaultKind.Timer"/> event, which a rule can drop (the timer never fires), delay (late) or, with
/// a negative delay, advance (early, but never before now).
/// </summary>
public sealed class FaultingTimerService(ITimerService inner, FaultEngine engine, string device) : ITimerService
{
    private long _dropped;

    public TimeProvider Clock => inner.Clock;

    public TimerHandle Schedule(long deadline, Action callback)
    {
        var decision = engine.Decide(new FaultPoint(FaultKind.Timer, device, 0));
        switch (decision.Verdict)
        {
            case FaultVerdict.Drop:
                // A handle that is never due: the device sees an armed timer that does not fire.
                return new TimerHandle(long.MaxValue, Interlocked.Increment(ref _dropped), callback);
            case FaultVerdict.Delay:
                var shift = (long)((Int128)decision.Delay.Ticks * Clock.TimestampFrequency / TimeSpan.TicksPerSecond);
                return inner.Schedule(Math.Max(Clock.GetTimestamp(), deadline + shift), callback);
            default:
                return inner.Schedule(deadline, callback);
        }
    }
}
