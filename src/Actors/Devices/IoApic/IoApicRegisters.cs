namespace Actorvisor.Actors.Devices.IoApic;

/// <summary>
/// The I/O APIC (Intel 82093AA datasheet, 3.0 "Register Description"; the EOI register from the ICH9
/// datasheet, 13.5.5). Memory offsets are inside the 4 KiB window at FEC00000h; indexes are IOREGSEL values.
/// </summary>
public static class IoApicRegisters
{
    public const ulong DefaultBase = 0xFEC0_0000, WindowSize = 0x1000;

    /// <summary>32 pins as bhyve: 0-15 ISA, 16-31 PCI.</summary>
    public const int PinCount = 32;

    public const ulong RegisterSelect = 0x00, Window = 0x10, Eoi = 0x40;

    public const uint IdIndex = 0x00, VersionIndex = 0x01, ArbitrationIndex = 0x02, RedirectionBase = 0x10;

    /// <summary>Version 11h (82093AA) with the maximum redirection entry in bits 23:16.</summary>
    public const uint Version = 0x11 | ((uint)(PinCount - 1) << 16);
    public const uint IdMask = 0x0F00_0000;

    // Redirection table entry, low dword
    public const uint VectorMask = 0xFF;
    public const int DeliveryModeShift = 8;
    public const uint DeliveryModeMask = 0x700;
    public const uint DestinationLogical = 1 << 11;
    public const uint DeliveryStatus = 1 << 12;     // read-only
    public const uint PolarityLow = 1 << 13;
    public const uint RemoteIrr = 1 << 14;          // read-only
    public const uint LevelTriggered = 1 << 15;
    public const uint Masked = 1 << 16;
    /// <summary>Low-dword bits a write may change (delivery status and remote IRR are the chip's).</summary>
    public const uint LowWritable = VectorMask | DeliveryModeMask | DestinationLogical | PolarityLow | LevelTriggered | Masked;
    /// <summary>High dword: the destination in bits 63:56; the rest is reserved.</summary>
    public const uint HighWritable = 0xFF00_0000;
    public const int DestinationShift = 24;

    /// <summary>Every entry is masked at reset.</summary>
    public const ulong PowerOnEntry = Masked;
}
