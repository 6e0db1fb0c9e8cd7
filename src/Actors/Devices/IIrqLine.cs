namespace Actorvisor.Actors.Devices;

/// <summary>
/// An interrupt output of a device model: the level of the wire the model drives. Models call it only
/// when the level changes; the actor around the model turns it into a <c>SetIrq</c> message.
/// </summary>
public interface IIrqLine
{
    void Set(bool level);
}

/// <summary>A line connected to nothing (a device whose interrupt is not routed).</summary>
public sealed class NoIrqLine : IIrqLine
{
    public static readonly NoIrqLine Instance = new();
    public void Set(bool level) { }
}
