namespace Actorvisor.Actors.Devices.Pci;

/// <summary>
/// The type 0 configuration header (PCI Local Bus 3.0, 6.1) and the capability IDs we build. Offsets are in
/// bytes from the start of a function's configuration space; ECAM gives each function 4 KiB, of which the
/// first 256 bytes are the conventional space.
/// </summary>
public static class PciRegisters
{
    public const int ConventionalSize = 256, ExtendedSize = 4096;

    public const int VendorId = 0x00, DeviceId = 0x02, Command = 0x04, Status = 0x06, RevisionId = 0x08;
    public const int ClassCode = 0x09, CacheLineSize = 0x0C, LatencyTimer = 0x0D, HeaderType = 0x0E, Bist = 0x0F;
    public const int Bar0 = 0x10, BarCount = 6, SubsystemVendorId = 0x2C, SubsystemId = 0x2E, ExpansionRom = 0x30;
    public const int CapabilitiesPointer = 0x34, InterruptLine = 0x3C, InterruptPin = 0x3D, FirstCapability = 0x40;

    // Command register bits (6.2.2).
    public const ushort CommandIoSpace = 1 << 0, CommandMemorySpace = 1 << 1, CommandBusMaster = 1 << 2;
    public const ushort CommandParityErrorResponse = 1 << 6, CommandSerr = 1 << 8, CommandIntxDisable = 1 << 10;
    public const ushort CommandWritable = CommandIoSpace | CommandMemorySpace | CommandBusMaster | CommandParityErrorResponse
                                          | CommandSerr | CommandIntxDisable;

    // Status register bits (6.2.3): bit 3 and 4 read-only, the error bits write-1-to-clear.
    public const ushort StatusInterrupt = 1 << 3, StatusCapabilities = 1 << 4;
    public const ushort StatusWriteOneToClear = 1 << 8 | 1 << 11 | 1 << 12 | 1 << 13 | 1 << 14 | 1 << 15;

    public const byte HeaderTypeMultiFunction = 0x80;

    // BAR low bits (6.2.5.1).
    public const uint BarIoSpace = 1, BarMemory64 = 0b100, BarPrefetchable = 0b1000;

    public const byte InterruptLineUnknown = 0xFF;

    // Capability IDs (PCI Code and ID Assignment, 2).
    public const byte CapabilityMsi = 0x05, CapabilityVendor = 0x09, CapabilityMsix = 0x11;
}

/// <summary>Bus, device (slot) and function of one PCI function.</summary>
public readonly record struct PciAddress(byte Bus, byte Device, byte Function)
{
    public const int Devices = 32, Functions = 8;

    public PciAddress(int device, int function) : this(0, (byte)device, (byte)function)
    {
        if ((uint)device >= Devices || (uint)function >= Functions) throw new ArgumentOutOfRangeException(nameof(device));
    }

    /// <summary>Device and function packed as the low byte of a configuration address (dev &lt;&lt; 3 | fn).</summary>
    public int DevFn => Device << 3 | Function;

    public override string ToString() => $"{Bus:x2}:{Device:x2}.{Function:x}";
}
