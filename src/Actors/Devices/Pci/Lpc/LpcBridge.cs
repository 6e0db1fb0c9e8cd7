using Actorvisor.Actors.Devices.Pirq;

namespace Actorvisor.Actors.Devices.Pci.Lpc;

/// <summary>
/// The LPC (ISA) bridge at 00:1f.0, as ICH9's (vendor 8086h, device 2918h, class 06 01 00): a configuration
/// space whose PIRQ route registers at 60h-63h and 68h-6Bh are the <see cref="PirqRouter"/>'s. Accesses there
/// go to the router byte by byte; the rest of the header behaves as any function's.
/// </summary>
public sealed class LpcBridge(PciIntxRouter router) : PciFunction(new PciConfigSpace(VendorIntel, DeviceIch9Lpc, ClassIsaBridge))
{
    public const ushort VendorIntel = 0x8086, DeviceIch9Lpc = 0x2918;
    public const uint ClassIsaBridge = 0x06_01_00;
    public static readonly PciAddress Address = new(0x1F, 0);

    public override uint ReadConfig(int offset, int size)
    {
        var v = Config.Read(offset, size);
        for (var i = 0; i < size; i++)
            if (PirqRegisters.PirqAt(offset + i) >= 0)
                v = v & ~(0xFFu << 8 * i) | (uint)router.ReadConfig(offset + i) << 8 * i;
        return v;
    }

    public override void WriteConfig(int offset, int size, uint value)
    {
        Config.Write(offset, size, value);
        for (var i = 0; i < size; i++)
            if (PirqRegisters.PirqAt(offset + i) >= 0) router.WriteConfig(offset + i, (byte)(value >> 8 * i));
    }
}

/// <summary>The host bridge at 00:00.0, as Q35's DRAM controller (8086h:29C0h, class 06 00 00): a header and nothing behind it.</summary>
public sealed class HostBridge() : PciFunction(new PciConfigSpace(LpcBridge.VendorIntel, DeviceQ35Host, ClassHostBridge))
{
    public const ushort DeviceQ35Host = 0x29C0;
    public const uint ClassHostBridge = 0x06_00_00;
    public static readonly PciAddress Address = new(0, 0);
}
