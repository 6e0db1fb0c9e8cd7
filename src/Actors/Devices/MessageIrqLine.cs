using Akka.Actor;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Devices;

/// <summary>
/// An <see cref="IIrqLine"/> that a device actor hands its model: each level change becomes a
/// <see cref="InterruptProtocol.SetIrq"/> to the interrupt fabric for the device's GSI.
/// </summary>
public sealed class MessageIrqLine(IActorRef fabric, int gsi, IActorRef sender) : IIrqLine
{
    public int Gsi => gsi;

    public void Set(bool level) => fabric.Tell(new InterruptProtocol.SetIrq(gsi, level), sender);
}
