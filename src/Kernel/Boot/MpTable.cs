using Actorvisor.Kernel.Boot.Acpi;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot;

/// <summary>Where <see cref="MpTable.Write"/> put the floating pointer and the configuration table, and the table's entry count.</summary>
public sealed record MpTableAddresses(ulong FloatingPointer, ulong ConfigTable, int EntryCount, ulong End);

/// <summary>
/// The Intel MultiProcessor Specification 1.4 tables (chapter 4), for kernels that find CPUs and the IOAPIC
/// through them: the 16-byte floating pointer ("_MP_") and the configuration table ("PCMP") with, in the
/// order the spec requires, one processor entry per CPU (the first is the bootstrap processor), the PCI bus (when
/// there is PCI) and the ISA bus, the IOAPIC, an I/O interrupt entry per ISA IRQ and per PCI INTx (IRQ 0 on pin 2, as the ACPI override says; no entry
/// for the cascade IRQ 2), and the local interrupt entries: ExtINT on LINT0 (virtual wire mode) and NMI on
/// LINT1. The IMCR bit of feature byte 2 is clear: the 8259 reaches the BSP through LINT0, not an IMCR.
/// </summary>
public static class MpTable
{
    public const int FloatingPointerLength = 16, HeaderLength = 44;
    public const byte SpecRevision = 4; // 1.4
    public const byte LocalApicVersion = 0x14, IoApicVersion = 0x11;

    // Entry types (Table 4-3) and lengths.
    public const byte EntryProcessor = 0, EntryBus = 1, EntryIoApic = 2, EntryIoInterrupt = 3, EntryLocalInterrupt = 4;
    public const int ProcessorLength = 20, OtherEntryLength = 8;
    public const byte CpuEnabled = 1, CpuBootstrap = 2, IoApicEnabled = 1;
    // Interrupt types (Table 4-9).
    public const byte IntInt = 0, IntNmi = 1, IntSmi = 2, IntExtInt = 3;
    /// <summary>
    /// Bus IDs: with PCI, the PCI bus is 0 (Linux matches a PCI interrupt entry's source bus ID to the PCI bus
    /// number) and ISA follows as 1; without PCI, ISA is 0.
    /// </summary>
    public const byte PciBusId = 0;
    public static byte IsaBusIdOf(PlatformDescription d) => d.Pci is null ? (byte)0 : (byte)1;
    /// <summary>INTI flags of a PCI interrupt: active low, level-triggered.</summary>
    public const ushort PciIntiFlags = (ushort)InterruptPolarity.ActiveLow | (ushort)InterruptTrigger.Level << 2;
    public const byte AllLocalApics = 0xFF;

    public static MpTableAddresses Write(GuestMemory mem, PlatformDescription d, ulong start, ulong limit)
    {
        if (start % 16 != 0) throw new ArgumentException("the MP floating pointer must sit on a 16-byte boundary", nameof(start));
        var config = start + FloatingPointerLength;
        var (table, count) = ConfigTable(d);
        var end = config + (ulong)table.Length;
        if (end > limit) throw new InvalidOperationException($"MP table ends at {end:X}, past the region's end {limit:X}");
        mem.Write(config, table);
        mem.Write(start, FloatingPointer((uint)config));
        return new MpTableAddresses(start, config, count, end);
    }

    public static byte[] FloatingPointer(uint configTable)
    {
        var t = new TableBuilder();
        t.Ascii("_MP_", 4).U32(configTable).U8(1 /* length in 16-byte units */).U8(SpecRevision).U8(0 /* checksum */);
        t.U8(0);        // feature 1: 0 = a configuration table is present (no default configuration)
        t.U8(0);        // feature 2: IMCRP clear, virtual wire mode
        t.Zeros(3);     // features 3-5
        t.FixChecksum(10, 0, FloatingPointerLength);
        return t.ToArray();
    }

    public static (byte[] Table, int EntryCount) ConfigTable(PlatformDescription d)
    {
        var t = new TableBuilder();
        t.Ascii("PCMP", 4).U16(0 /* base table length */).U8(SpecRevision).U8(0 /* checksum */);
        t.Ascii("ACTVSR", 8).Ascii("ACTORVISOR", 12);
        t.U32(0).U16(0);                      // OEM table pointer and size
        t.U16(0);                             // entry count
        t.U32(PlatformDescription.LocalApicAddress);
        t.U16(0).U8(0).U8(0);                 // extended table length and checksum, reserved
        var count = 0;

        for (var i = 0; i < d.ApicIds.Count; i++, count++)
        {
            t.U8(EntryProcessor).U8(d.ApicIds[i]).U8(LocalApicVersion).U8((byte)(CpuEnabled | (i == 0 ? CpuBootstrap : 0)));
            t.U32(d.CpuSignature).U32(d.CpuFeatures).Zeros(8);
        }
        var isaBus = IsaBusIdOf(d);
        if (d.Pci is not null) { t.U8(EntryBus).U8(PciBusId).Ascii("PCI", 6); count++; }
        t.U8(EntryBus).U8(isaBus).Ascii("ISA", 6); count++;
        t.U8(EntryIoApic).U8(d.IoApic.Id).U8(IoApicVersion).U8(IoApicEnabled).U32(d.IoApic.Address); count++;
        for (byte irq = 0; irq < 16; irq++)
        {
            var o = d.Overrides.FirstOrDefault(x => x.IsaIrq == irq);
            if (irq == 2 && o is null) continue; // the cascade: pin 2 carries IRQ 0
            var pin = (o?.Gsi ?? irq) - d.IoApic.GsiBase;
            t.U8(EntryIoInterrupt).U8(IntInt).U16(o?.Flags ?? 0).U8(isaBus).U8(irq).U8(d.IoApic.Id).U8((byte)pin);
            count++;
        }
        // PCI INTx (MP 1.4, D.3): the source bus IRQ is device << 2 | pin (0 = INTA).
        foreach (var e in d.Pci?.Intx ?? [])
        {
            t.U8(EntryIoInterrupt).U8(IntInt).U16(PciIntiFlags).U8(PciBusId).U8((byte)(e.Device << 2 | e.Pin)).U8(d.IoApic.Id)
                .U8((byte)(e.Gsi - d.IoApic.GsiBase));
            count++;
        }
        t.U8(EntryLocalInterrupt).U8(IntExtInt).U16(0).U8(isaBus).U8(0).U8(AllLocalApics).U8(0); count++;
        t.U8(EntryLocalInterrupt).U8(IntNmi).U16(0).U8(isaBus).U8(0).U8(AllLocalApics).U8(1); count++;

        t.PatchU16(4, (ushort)t.Length);
        t.PatchU16(34, (ushort)count);
        t.FixChecksum(7, 0, t.Length);
        return (t.ToArray(), count);
    }
}
