using Akka.Actor;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Devices;

/// <summary>
/// An <see cref="IIrqLine"/> that a device actor hands its model: each level change becomes a
/// <see cref="InterruptProtocol.SetIrq"/> to the interrupt fabric for the device's GSI, and an edge
/// (<see cref="IEdgeIrqLine.Pulse"/>) a <see cref="InterruptProtocol.PulseIrq"/>.
/// </summary>
public sealed class MessageIrqLine(IActorRef fabric, int gsi, IActorRef sender) : IEdgeIrqLine
{
    public int Gsi => gsi;

    public void Set(bool level) => fabric.Tell(new InterruptProtocol.SetIrq(gsi, level), sender);

    public void Pulse() => fabric.Tell(new InterruptProtocol.PulseIrq(gsi), sender);
}
