namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// The PCI Express memory-mapped configuration table (PCI Firmware 3.2, 4.1.2): after the header, 8 reserved
/// bytes, then one 16-byte allocation per ECAM window: base address, segment group, start and end bus.
/// </summary>
public static class Mcfg
{
    public const byte Revision = 1;
    public const int Length = AcpiHeader.Size + 8 + 16;

    public static byte[] Build(PciDescription p)
    {
        var t = AcpiHeader.Begin("MCFG", Revision);
        t.Zeros(8);
        t.U64(p.EcamBase + ((ulong)p.StartBus << 20)).U16(0).U8(p.StartBus).U8(p.EndBus).Zeros(4);
        return AcpiHeader.Finish(t);
    }
}
