using Akka.Actor;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Cpu;

/// <summary>
/// The reply path of one vCPU's device reads: an actor reference that is not an actor. A read sends
/// PioRead/MmioRead with this as the sender; the device's <c>Sender.Tell(AccessResult)</c> lands in
/// <see cref="TellInternal"/> on the device's thread, which stores the value and releases the waiting
/// vCPU thread. One instance per vCPU, reused for every read: unlike <c>Ask</c> it creates no temporary
/// actor and no Task per access. A vCPU has at most one read in flight, so a reply needs no correlation
/// id; a reply that arrives when no read waits (after a timeout, which stops the vCPU) is counted and dropped.
/// </summary>
public sealed class AccessReplyTarget : MinimalActorRef, IDisposable
{
    // Spin a little before sleeping: a device actor answers within microseconds when a core is free.
    private readonly ManualResetEventSlim _arrived = new(false, spinCount: 100);
    private int _awaiting;
    private ulong _value;
    private long _strayReplies;

    public override ActorPath Path { get; }
    public override IActorRefProvider Provider { get; }

    public AccessReplyTarget(ActorSystem system)
    {
        Provider = ((ExtendedActorSystem)system).Provider;
        Path = Provider.TempPath();
        // Registered so the path resolves (dead-letter logs, ActorSelection); nothing routes through it.
        Provider.RegisterTempActor(this, Path);
    }

    /// <summary>Replies that came when no read was waiting.</summary>
    public long StrayReplies => Interlocked.Read(ref _strayReplies);

    protected override void TellInternal(object message, IActorRef sender)
    {
        if (message is AccessResult r && Interlocked.CompareExchange(ref _awaiting, 0, 1) == 1)
        {
            _value = r.Value;
            _arrived.Set();
        }
        else
        {
            Interlocked.Increment(ref _strayReplies);
        }
    }

    /// <summary>
    /// Sends <paramref name="request"/> to <paramref name="device"/> and blocks the calling (vCPU) thread
    /// until the reply. Throws <see cref="DeviceTimeoutException"/> after <paramref name="timeout"/>, and
    /// <see cref="OperationCanceledException"/> when the vCPU is stopped while waiting.
    /// </summary>
    public ulong Request(IActorRef device, object request, TimeSpan timeout, CancellationToken cancel, Func<string> describe)
    {
        _arrived.Reset();
        Volatile.Write(ref _awaiting, 1);
        device.Tell(request, this);
        bool arrived;
        try
        {
            arrived = _arrived.Wait(timeout, cancel);
        }
        catch (OperationCanceledException)
        {
            Volatile.Write(ref _awaiting, 0);
            throw;
        }
        if (!arrived)
        {
            if (Interlocked.CompareExchange(ref _awaiting, 0, 1) == 1)
                throw new DeviceTimeoutException($"{describe()} got no answer from device {device.Path} within {timeout.TotalSeconds:0.###} s");
            // The reply won the race against the timeout: it is being stored now.
            _arrived.Wait();
        }
        return _value;
    }

    public void Dispose()
    {
        Provider.UnregisterTempActor(Path);
        _arrived.Dispose();
    }
}
