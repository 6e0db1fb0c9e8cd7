using System.Diagnostics.Metrics;
using Akka.Actor;
using Actorvisor.Kernel.Telemetry;
using static Actorvisor.Kernel.Telemetry.TelemetryAttributes;

namespace Actorvisor.Actors.Devices;

/// <summary>
/// The gauge <c>actorvisor.mailbox.depth</c>: messages waiting in each tracked actor's mailbox, read when the
/// exporter collects (Akka's mailbox count, a field read per actor; nothing on the message path). Actors that
/// have stopped drop out at the next collection.
/// </summary>
public static class MailboxDepth
{
    private static readonly object Gate = new();
    private static List<(string Vm, IActorRef Actor)> _tracked = new();

    static MailboxDepth()
    {
        ActorvisorTelemetry.Meter.CreateObservableGauge("actorvisor.mailbox.depth", Observe, "{message}",
            "Messages waiting in a device actor's mailbox");
    }

    public static void Track(string vm, IActorRef actor)
    {
        lock (Gate) _tracked.Add((vm, actor));
    }

    /// <summary>The number of messages in <paramref name="actor"/>'s mailbox; -1 if it is not a local actor.</summary>
    public static int Depth(IActorRef actor) =>
        actor is ActorRefWithCell { Underlying: ActorCell cell } ? cell.Mailbox.MessageQueue.Count : -1;

    /// <summary>The tracked actors of <paramref name="vm"/> that are still there, and their mailbox depths now.</summary>
    public static IReadOnlyList<(string Actor, int Depth)> Of(string vm)
    {
        List<(string Vm, IActorRef Actor)> live;
        lock (Gate) live = [.. _tracked];
        var result = new List<(string, int)>();
        foreach (var (v, actor) in live)
            if (v == vm && actor is not IInternalActorRef { IsTerminated: true } && Depth(actor) is var d and >= 0)
                result.Add((actor.Path.Name, d));
        return result;
    }

    private static IEnumerable<Measurement<int>> Observe()
    {
        List<(string Vm, IActorRef Actor)> live;
        lock (Gate)
        {
            _tracked.RemoveAll(t => t.Actor is IInternalActorRef { IsTerminated: true });
            live = [.. _tracked];
        }
        foreach (var (vm, actor) in live)
        {
            var depth = Depth(actor);
            if (depth >= 0)
                yield return new Measurement<int>(depth, new KeyValuePair<string, object?>(VmName, vm),
                    new KeyValuePair<string, object?>(ActorName, actor.Path.Name));
        }
    }
}
