namespace Actorvisor.Actors.Devices;

/// <summary>
/// An interrupt output of a device model: the level of the wire the model drives. Models call it only
/// when the level changes; the actor around the model turns it into a <c>SetIrq</c> message.
/// </summary>
public interface IIrqLine
{
    void Set(bool level);
}

/// <summary>An output that also signals a lone edge (assert then deassert) in one message, as bhyve's pulse.</summary>
public interface IEdgeIrqLine : IIrqLine
{
    void Pulse();
}

/// <summary>A line connected to nothing (a device whose interrupt is not routed).</summary>
public sealed class NoIrqLine : IEdgeIrqLine
{
    public static readonly NoIrqLine Instance = new();
    public void Set(bool level) { }
    public void Pulse() { }
}
