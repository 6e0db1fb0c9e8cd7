using Akka.Actor;
using Actorvisor.Kernel.Time;

namespace Actorvisor.Actors.Devices;

/// <summary>A device actor's timer fired; stale generations (re-armed or cancelled since) are ignored.</summary>
public sealed record TimerExpired(long Generation);

/// <summary>
/// One re-armable timer of a device actor on the kernel timer service: <see cref="Arm"/> with the model's
/// next deadline after every message; the expiry comes back as <see cref="TimerExpired"/> Told to the
/// actor. Each arming bumps the generation, so an expiry that raced with a re-arm is recognised and dropped.
/// </summary>
public sealed class DeviceTimer(ITimerService service, IActorRef owner)
{
    private TimerHandle? _handle;
    private long _generation;

    public long? ArmedDeadline => _handle is { IsCancelled: false, HasFired: false } ? _handle.Deadline : null;

    /// <summary>Arms for <paramref name="deadline"/> (null: disarms); keeps the current timer if it already has that deadline.</summary>
    public void Arm(long? deadline)
    {
        if (deadline == ArmedDeadline && deadline is not null) return;
        _handle?.Cancel();
        _handle = null;
        if (deadline is not { } d) return;
        var generation = ++_generation;
        var owner1 = owner;
        _handle = service.Schedule(d, () => owner1.Tell(new TimerExpired(generation), ActorRefs.NoSender));
    }

    /// <summary>True if <paramref name="expired"/> is the expiry of the timer armed last.</summary>
    public bool IsCurrent(TimerExpired expired) => expired.Generation == _generation;

    public void Cancel()
    {
        _handle?.Cancel();
        _handle = null;
    }
}
