namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// The Differentiated System Description Table: hand-assembled AML (<see cref="Aml"/>). It names the S5
/// sleep state (the SLP_TYP value OSPM writes to PM1a_CNT to power off), and in \_SB one Device per processor
/// (ACPI0007, _UID = its MADT processor UID) and a PNP0501 device per legacy serial port with its ports and IRQ.
/// Names are written relative to the root because the DSDT's scope is the root: that is also how iasl
/// compiles them, so the disassembly recompiles to the same bytes.
/// </summary>
public static class Dsdt
{
    /// <summary>Revision 2: integers are 64 bits.</summary>
    public const byte Revision = 2;
    /// <summary>_STA: present, enabled, shown in the UI, functioning.</summary>
    private const byte StaPresent = 0x0F;

    public static byte[] Body(PlatformDescription d)
    {
        var s5 = Aml.Name("_S5_", Aml.Package(Aml.Integer(d.S5SleepType), Aml.Integer(d.S5SleepType), Aml.Integer(0), Aml.Integer(0)));
        var devices = new List<byte[]>();
        for (var i = 0; i < d.ApicIds.Count; i++)
            devices.Add(Aml.Device($"C{i:X3}", Aml.Name("_HID", Aml.String("ACPI0007")), Aml.Name("_UID", Aml.Integer((ulong)i))));
        for (var i = 0; i < d.SerialPorts.Count; i++)
        {
            var p = d.SerialPorts[i];
            devices.Add(Aml.Device($"COM{i + 1}",
                Aml.Name("_HID", Aml.EisaId("PNP0501")),
                Aml.Name("_UID", Aml.Integer((ulong)i + 1)),
                Aml.Name("_STA", Aml.Integer(StaPresent)),
                Aml.Name("_CRS", Aml.Resources.Template(Aml.Resources.Io(p.Port, 8), Aml.Resources.IrqNoFlags(p.Irq)))));
        }
        if (d.Pci is { } pci) devices.AddRange(PciAml.SystemBusDevices(pci));
        var root = d.Pci is null ? [] : PciAml.RootTerms().SelectMany(t => t).ToArray();
        return [.. s5, .. root, .. Aml.Scope("_SB_", devices.ToArray())];
    }

    public static byte[] Build(PlatformDescription d)
    {
        var t = AcpiHeader.Begin("DSDT", Revision);
        t.Bytes(Body(d));
        return AcpiHeader.Finish(t);
    }
}
