using Akka.Actor;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices;

/// <summary>
/// What a device actor that saves its registers (<see cref="DeviceStateStore"/>) does around each message:
/// store the model's state when the message was handled, and when it threw, answer a read it was serving with
/// all ones (a device that does not drive the bus) so the vCPU waiting on it goes on, then let the failure
/// reach the supervisor.
/// </summary>
public static class DeviceSnapshots
{
    /// <summary>Runs the actor's handler for <paramref name="message"/>; after it succeeded, stores <paramref name="save"/>'s state.</summary>
    public static bool Receive(Func<bool> handle, object message, IActorRef sender, IActorRef self, DeviceStateStore? store, Func<object> save)
    {
        bool handled;
        try
        {
            handled = handle();
        }
        catch
        {
            AnswerFailedRead(message, sender, self);
            throw;
        }
        store?.Store(save());
        return handled;
    }

    /// <summary>A read the device failed on gets the floating bus's all ones; any other message needs no answer.</summary>
    public static void AnswerFailedRead(object message, IActorRef sender, IActorRef self)
    {
        var size = message switch
        {
            PioRead r => r.Size,
            MmioRead r => r.Size,
            _ => 0,
        };
        if (size == 0 || sender.IsNobody()) return;
        sender.Tell(new AccessResult(size >= 8 ? ulong.MaxValue : (1UL << (8 * size)) - 1), self);
    }
}
