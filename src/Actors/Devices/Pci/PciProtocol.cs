namespace Actorvisor.Actors.Devices.Pci;

/// <summary>
/// Messages between the PCI host (which decodes configuration cycles and BAR windows) and the function actors.
/// Reads are answered with <c>AccessResult</c> to the sender the host forwarded (the vCPU's reply target).
/// </summary>
public static class PciProtocol
{
    public sealed record ConfigRead(int Offset, byte Size);
    /// <summary>Answered with <see cref="Decodes"/> to the sender (the host), after the write took effect.</summary>
    public sealed record ConfigWrite(int Offset, byte Size, uint Value);
    public sealed record BarRead(int Bar, ulong Offset, byte Size);
    public sealed record BarWrite(int Bar, ulong Offset, byte Size, ulong Value);
    /// <summary>Where a function's BARs decode now.</summary>
    public sealed record Decodes(PciAddress Function, IReadOnlyList<PciBarDecode> Bars);
    /// <summary>Asks a function actor for its <see cref="Decodes"/> (start-up).</summary>
    public sealed record GetDecodes
    {
        public static readonly GetDecodes Instance = new();
    }
    /// <summary>Work a function posted to its own thread (<see cref="PciFunctionContext.Post"/>).</summary>
    public sealed record Run(Action Action);
}
