namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// The Multiple APIC Description Table (ACPI 6.3, 5.2.12): the local APIC address and PCAT_COMPAT (a dual
/// 8259 is present, so the OS masks it when it uses the APICs), then one Processor Local APIC entry per CPU,
/// the IOAPIC, the ISA interrupt source overrides and a Local APIC NMI on LINT1 for all processors.
/// Linux built without MP-table parsing finds the CPUs and the IOAPIC only here.
/// </summary>
public static class Madt
{
    public const byte Revision = 5;
    public const uint FlagPcatCompat = 1;

    // Interrupt Controller Structure types (Table 5-45) and their lengths.
    public const byte TypeLocalApic = 0, TypeIoApic = 1, TypeInterruptOverride = 2, TypeLocalApicNmi = 4;
    public const byte LocalApicLength = 8, IoApicLength = 12, InterruptOverrideLength = 10, LocalApicNmiLength = 6;
    public const uint LocalApicEnabled = 1;
    /// <summary>ACPI processor UID 0xFF in a Local APIC NMI entry: every processor.</summary>
    public const byte AllProcessors = 0xFF;
    public const byte Lint1 = 1;

    public static byte[] Build(PlatformDescription d)
    {
        var t = AcpiHeader.Begin("APIC", Revision);
        t.U32(PlatformDescription.LocalApicAddress);
        t.U32(FlagPcatCompat);
        for (var i = 0; i < d.ApicIds.Count; i++)
            t.U8(TypeLocalApic).U8(LocalApicLength).U8((byte)i).U8(d.ApicIds[i]).U32(LocalApicEnabled); // UID = CPU index
        var io = d.IoApic;
        t.U8(TypeIoApic).U8(IoApicLength).U8(io.Id).U8(0).U32(io.Address).U32(io.GsiBase);
        foreach (var o in d.Overrides)
            t.U8(TypeInterruptOverride).U8(InterruptOverrideLength).U8(0 /* bus: ISA */).U8(o.IsaIrq).U32(o.Gsi).U16(o.Flags);
        // NMI is edge-triggered, active high (flags 0101b), through LINT1 as on every PC.
        var nmiFlags = new InterruptOverride(0, 0, InterruptPolarity.ActiveHigh, InterruptTrigger.Edge).Flags;
        t.U8(TypeLocalApicNmi).U8(LocalApicNmiLength).U8(AllProcessors).U16(nmiFlags).U8(Lint1);
        return AcpiHeader.Finish(t);
    }
}
