namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// The DSDT's PCI part (ACPI 6.3, 6.1, 6.2.13 _PRT, 6.2.10 _PIC): \PICM and \_PIC (the OS says whether it routes
/// through the IOAPIC or the 8259), the host bridge \_SB.PCI0 (PNP0A03: conventional PCI, so no _OSC is needed)
/// with its segment, bus and the windows it decodes in _CRS, a _PRT that lists every INTx as its GSI in APIC mode
/// and as a PCI interrupt link in PIC mode, the links LNKA-LNKH (PNP0C0F) whose _PRS and _CRS name the IRQ the
/// router steered each PIRQ to (the routes are fixed at start: _SRS and _DIS change nothing, and Linux, reading _CRS back after _SRS, finds the
/// one IRQ _PRS offered),
/// and a PNP0C02 motherboard resource that reserves the ECAM window, as Linux wants before it uses MCFG.
/// </summary>
public static class PciAml
{
    private const byte StaPresentEnabled = 0x0B, StaAbsent = 0;

    /// <summary>Terms for the root scope: PICM and _PIC.</summary>
    public static byte[][] RootTerms() =>
    [
        Aml.Name("PICM", Aml.Integer(0)),
        Aml.Method("_PIC", 1, Aml.Store(Aml.Arg(0), Aml.Reference("PICM"))),
    ];

    /// <summary>Devices for \_SB: PCI0, the links, and the ECAM reservation.</summary>
    public static byte[][] SystemBusDevices(PciDescription p)
    {
        var devices = new List<byte[]> { HostBridge(p) };
        for (var i = 0; i < p.PirqIrqs.Count; i++) devices.Add(Link(i, p.PirqIrqs[i]));
        var ecamLength = (uint)(p.EndBus - p.StartBus + 1) << 20;
        devices.Add(Aml.Device("MRES",
            Aml.Name("_HID", Aml.EisaId("PNP0C02")),
            Aml.Name("_UID", Aml.Integer(1)),
            Aml.Name("_CRS", Aml.Resources.Template(Aml.Resources.Memory32Fixed((uint)(p.EcamBase + ((ulong)p.StartBus << 20)), ecamLength)))));
        return devices.ToArray();
    }

    public static string LinkName(int pirq) => $"LNK{(char)('A' + pirq)}";

    private static byte[] HostBridge(PciDescription p)
    {
        var crs = new List<byte[]>
        {
            Aml.Resources.WordBusNumber(p.StartBus, p.EndBus),
            Aml.Resources.Io(0xCF8, 8),
            // The ISA ports below the configuration ports, which the LPC bridge decodes for the legacy devices.
            Aml.Resources.WordIo(0x0000, 0x0CF7),
            Aml.Resources.WordIo(p.IoBase, p.IoLimit),
            Aml.Resources.DWordMemory((uint)p.Mmio32Base, (uint)(p.Mmio32Base + p.Mmio32Size - 1)),
        };
        if (p.Mmio64Size > 0) crs.Add(Aml.Resources.QWordMemory(p.Mmio64Base, p.Mmio64Base + p.Mmio64Size - 1));
        var apic = p.Intx.Select(e => Aml.Package(Aml.Integer((ulong)e.Device << 16 | 0xFFFF), Aml.Integer(e.Pin), Aml.Integer(0), Aml.Integer(e.Gsi)));
        var pic = p.Intx.Select(e => Aml.Package(Aml.Integer((ulong)e.Device << 16 | 0xFFFF), Aml.Integer(e.Pin), Aml.Reference(LinkName(e.Pirq)), Aml.Integer(0)));
        return Aml.Device("PCI0",
            Aml.Name("_HID", Aml.EisaId("PNP0A03")),
            Aml.Name("_SEG", Aml.Integer(0)),
            Aml.Name("_BBN", Aml.Integer(p.StartBus)),
            Aml.Name("_UID", Aml.Integer(0)),
            Aml.Name("_CRS", Aml.Resources.Template(crs.ToArray())),
            Aml.Name("PRTA", Aml.Package(apic.ToArray())),
            Aml.Name("PRTP", Aml.Package(pic.ToArray())),
            Aml.Method("_PRT", 0, Aml.If(Aml.Reference("PICM"), Aml.Return(Aml.Reference("PRTA"))), Aml.Return(Aml.Reference("PRTP"))));
    }

    private static byte[] Link(int pirq, int irq)
    {
        var irqs = irq >= 0 ? new[] { irq } : [];
        var resources = Aml.Resources.Template(Aml.Resources.IrqLevelLowShared(irqs));
        return Aml.Device(LinkName(pirq),
            Aml.Name("_HID", Aml.EisaId("PNP0C0F")),
            Aml.Name("_UID", Aml.Integer((ulong)pirq + 1)),
            Aml.Name("_STA", Aml.Integer(irq >= 0 ? StaPresentEnabled : StaAbsent)),
            Aml.Name("_PRS", resources),
            Aml.Name("_CRS", resources),
            Aml.Method("_SRS", 1),
            Aml.Method("_DIS", 0));
    }
}
