namespace Actorvisor.Actors.Devices.Pci.Host;

/// <summary>
/// Where PCI lives in the guest's address spaces (bhyve's layout): configuration mechanism #1 at 0xCF8/0xCFC,
/// ECAM for bus 0 at 0xE0000000, 32-bit BARs in the PCI hole 0xC0000000-0xDFFFFFFF below it, 64-bit BARs in a
/// window above the top of RAM, I/O BARs from 0x2000.
/// </summary>
public sealed record PciWindows(ulong Mmio32Base, ulong Mmio32Size, ulong Mmio64Base, ulong Mmio64Size, ushort IoBase, ushort IoLimit)
{
    public const ushort ConfigAddressPort = 0xCF8, ConfigDataPort = 0xCFC;
    /// <summary>0xCF8-0xCFF: the address dword and the data dword. Port 0xCF9 (a byte) inside is the reset control register.</summary>
    public const ushort ConfigPortCount = 8;
    public const ushort ResetControlPort = 0xCF9;
    public const ulong EcamBase = 0xE000_0000;
    /// <summary>One bus: 32 devices × 8 functions × 4 KiB.</summary>
    public const ulong EcamSize = 1UL << 20;
    public const byte EcamEndBus = 0;

    public ulong Mmio32End => Mmio32Base + Mmio32Size;
    public ulong Mmio64End => Mmio64Base + Mmio64Size;

    /// <summary>The standard windows; the 64-bit one starts at the next 64 GiB boundary at or above the top of RAM (at least 64 GiB), 64 GiB long.</summary>
    public static PciWindows For(ulong topOfRam)
    {
        const ulong align = 64UL << 30;
        var high = Math.Max(align, (topOfRam + align - 1) & ~(align - 1));
        return new PciWindows(0xC000_0000, 0x2000_0000, high, align, 0x2000, 0xFFFF);
    }
}
