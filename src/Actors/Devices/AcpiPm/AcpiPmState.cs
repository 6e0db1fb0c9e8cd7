namespace Actorvisor.Actors.Devices.AcpiPm;

/// <summary>The guest-visible registers of the PM block (the timer is derived from the clock and not part of it).</summary>
public sealed record AcpiPmState(ushort Status, ushort Enable, ushort Control)
{
    public static readonly AcpiPmState PowerOn = new(0, 0, 0);
}
