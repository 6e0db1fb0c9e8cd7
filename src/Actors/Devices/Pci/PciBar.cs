namespace Actorvisor.Actors.Devices.Pci;

public enum PciBarKind : byte { Io, Memory32, Memory64 }

/// <summary>
/// A base address register a function implements: its space, its size (a power of two: at least 4 bytes
/// for I/O, 16 for memory) and, for memory, whether it is prefetchable. A 64-bit BAR takes two slots.
/// </summary>
public sealed record PciBar(PciBarKind Kind, ulong Size, bool Prefetchable = false)
{
    public bool IsIo => Kind == PciBarKind.Io;

    public void Validate()
    {
        var min = IsIo ? 4UL : 16UL;
        if (Size < min || (Size & (Size - 1)) != 0) throw new ArgumentException($"BAR size 0x{Size:x} is not a power of two of at least {min}");
        if (IsIo && Size > 256) throw new ArgumentException("an I/O BAR decodes at most 256 ports (PCI 3.0, 6.2.5.1)");
        if (Kind == PciBarKind.Memory32 && Size > 1UL << 31) throw new ArgumentException("a 32-bit BAR is at most 2 GiB");
        if (IsIo && Prefetchable) throw new ArgumentException("an I/O BAR is not prefetchable");
    }
}

/// <summary>Where a BAR decodes now: its space, base and size (only while the command register enables that space).</summary>
public readonly record struct PciBarDecode(int Bar, bool Io, ulong Base, ulong Size)
{
    public ulong End => Base + Size;
}
