namespace Actorvisor.Actors.Devices.Hpet;

/// <summary>
/// Where the HPET's interrupts go. A timer may drive any of several lines (its route is guest-programmed),
/// so the model names the GSI with each call rather than holding one <see cref="IIrqLine"/> per pin:
/// ISA IRQ 0 and 8 under LegacyReplacement, IOAPIC pins 16-23 otherwise, or an MSI for FSB delivery.
/// </summary>
public interface IHpetInterruptSink
{
    /// <summary>A level-triggered timer's line changed (called only on a change).</summary>
    void SetIrq(int gsi, bool level);

    /// <summary>An edge-triggered timer's match: one edge on the line.</summary>
    void PulseIrq(int gsi);

    /// <summary>FSB delivery (2.3.10): the route register's value written to its address.</summary>
    void Msi(ulong address, uint data);
}

/// <summary>An HPET connected to nothing.</summary>
public sealed class NoHpetInterrupts : IHpetInterruptSink
{
    public static readonly NoHpetInterrupts Instance = new();
    public void SetIrq(int gsi, bool level) { }
    public void PulseIrq(int gsi) { }
    public void Msi(ulong address, uint data) { }
}
