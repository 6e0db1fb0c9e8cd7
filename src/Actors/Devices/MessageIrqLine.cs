using Akka.Actor;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Telemetry;

namespace Actorvisor.Actors.Devices;

/// <summary>
/// An <see cref="IIrqLine"/> that a device actor hands its model: each level change becomes a
/// <see cref="InterruptProtocol.SetIrq"/> to the interrupt fabric for the device's GSI, and an edge
/// (<see cref="IEdgeIrqLine.Pulse"/>) a <see cref="InterruptProtocol.PulseIrq"/>. A rising level or a pulse
/// starts the interrupt's trace when its class is on (<see cref="InterruptSourceTelemetry"/>).
/// </summary>
public sealed class MessageIrqLine(IActorRef fabric, int gsi, IActorRef sender) : IEdgeIrqLine
{
    private readonly InterruptSourceTelemetry _telemetry = new(sender);

    public int Gsi => gsi;

    public void Set(bool level) => fabric.Tell(level
        ? new InterruptProtocol.SetIrq(gsi, true, _telemetry.Raised(gsi), InterruptLatency.Stamp())
        : new InterruptProtocol.SetIrq(gsi, false), sender);

    public void Pulse() => fabric.Tell(new InterruptProtocol.PulseIrq(gsi, _telemetry.Raised(gsi), InterruptLatency.Stamp()), sender);
}
