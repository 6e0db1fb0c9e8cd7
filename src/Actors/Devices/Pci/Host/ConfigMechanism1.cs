namespace Actorvisor.Actors.Devices.Pci.Host;

/// <summary>A decoded configuration cycle: the function (bus, device, function) and the register offset.</summary>
public readonly record struct ConfigCycle(PciAddress Function, int Offset);

/// <summary>
/// Configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2): CONFIG_ADDRESS at 0xCF8 latches only dword
/// writes (bit 31 enable, bus 23:16, device 15:11, function 10:8, register 7:2; bits 30:24 and 1:0 read 0);
/// CONFIG_DATA at 0xCFC-0xCFF carries a 1-, 2- or 4-byte access to the latched register plus the port's
/// offset. Byte and word accesses to 0xCF8-0xCFB are not configuration cycles: they pass through as ordinary
/// I/O (reads all ones). With the enable bit clear, data accesses read all ones and writes are dropped.
/// </summary>
public sealed class ConfigMechanism1
{
    public const uint Enable = 0x8000_0000, AddressMask = 0x80FF_FFFC;
    public uint Address { get; private set; }

    /// <summary>A read of 0xCF8-0xCFB at <paramref name="offset"/> (0-3); null means the access is not ours (all ones).</summary>
    public uint? ReadAddress(int offset, int size) => offset == 0 && size == 4 ? Address : null;

    public void WriteAddress(int offset, int size, uint value)
    {
        if (offset == 0 && size == 4) Address = value & AddressMask;
    }

    /// <summary>The cycle an access of <paramref name="size"/> bytes at 0xCFC + <paramref name="offset"/> makes, or null when disabled or misaligned.</summary>
    public ConfigCycle? Decode(int offset, int size)
    {
        if ((Address & Enable) == 0 || offset + size > 4 || size is not (1 or 2 or 4) || offset % size != 0) return null;
        var bus = (byte)(Address >> 16);
        var device = (byte)(Address >> 11 & 0x1F);
        var function = (byte)(Address >> 8 & 7);
        return new ConfigCycle(new PciAddress(bus, device, function), (int)(Address & 0xFC) + offset);
    }

    /// <summary>An ECAM access (PCI Express 3.0, 7.2.2): bus 27:20, device 19:15, function 14:12, register 11:0 of the offset in the window.</summary>
    public static ConfigCycle? DecodeEcam(ulong offset, int size)
    {
        if (size is not (1 or 2 or 4) || (offset & 0xFFF) + (ulong)size > 0x1000 || offset % (ulong)size != 0) return null;
        return new ConfigCycle(new PciAddress((byte)(offset >> 20), (byte)(offset >> 15 & 0x1F), (byte)(offset >> 12 & 7)), (int)(offset & 0xFFF));
    }
}
