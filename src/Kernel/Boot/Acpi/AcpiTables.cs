using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>Where <see cref="AcpiTables.Write"/> put each table (guest-physical); <see cref="Hpet"/> is 0 when none was emitted.</summary>
public sealed record AcpiTableAddresses(ulong Rsdp, ulong Xsdt, ulong Rsdt, ulong Fadt, ulong Facs, ulong Dsdt, ulong Madt, ulong Hpet, ulong End)
{
    /// <summary>The MCFG table, or 0 when the platform has no PCI.</summary>
    public ulong Mcfg { get; init; }
}

/// <summary>
/// Writes the ACPI tables of a <see cref="PlatformDescription"/> into guest memory: RSDP (revision 2, with
/// both RSDT and XSDT), XSDT, RSDT, FADT, FACS, DSDT, MADT and, when asked, HPET. Every table is checksummed.
/// The RSDP comes first at a 16-byte boundary of the region, so a guest scanning 0xE0000-0xFFFFF for
/// "RSD PTR " finds it; a Linux boot also gets its address in boot_params.acpi_rsdp_addr.
/// </summary>
public static class AcpiTables
{
    public const int RsdpLength = 36, RsdpV1Length = 20;
    public const byte RsdpRevision = 2;
    public const int FacsLength = 64;
    public const byte FacsVersion = 2;

    public static AcpiTableAddresses Write(GuestMemory mem, PlatformDescription d, ulong start, ulong limit)
    {
        if (start % 16 != 0) throw new ArgumentException("the RSDP must sit on a 16-byte boundary", nameof(start));
        var dsdt = Dsdt.Build(d);
        var madt = Madt.Build(d);
        var hasHpet = d.HpetAddress is not null;
        var hasPci = d.Pci is not null;
        var entries = 2 + (hasHpet ? 1 : 0) + (hasPci ? 1 : 0); // FADT, MADT, HPET, MCFG

        var at = start;
        ulong Place(int length, ulong align)
        {
            at = (at + align - 1) & ~(align - 1);
            var a = at;
            at += (ulong)length;
            return a;
        }
        var rsdp = Place(RsdpLength, 16);
        var xsdt = Place(AcpiHeader.Size + 8 * entries, 16);
        var rsdt = Place(AcpiHeader.Size + 4 * entries, 16);
        var fadt = Place(Fadt.Length, 16);
        var facs = Place(FacsLength, 64); // FACS must be 64-byte aligned (ACPI 6.3, 5.2.10)
        var dsdtAt = Place(dsdt.Length, 16);
        var madtAt = Place(madt.Length, 16);
        var hpet = hasHpet ? Place(Hpet.Length, 16) : 0;
        var mcfg = hasPci ? Place(Mcfg.Length, 16) : 0;
        if (at > limit) throw new InvalidOperationException($"ACPI tables end at {at:X}, past the region's end {limit:X}");
        if (limit > uint.MaxValue) throw new ArgumentException("ACPI tables must sit below 4 GiB (32-bit RSDT pointers)", nameof(limit));

        var tables = new List<ulong> { fadt, madtAt };
        if (hasHpet) tables.Add(hpet);
        if (hasPci) tables.Add(mcfg);

        mem.Write(dsdtAt, dsdt);
        mem.Write(madtAt, madt);
        if (hasHpet) mem.Write(hpet, Hpet.Build(d, d.HpetAddress!.Value));
        if (hasPci) mem.Write(mcfg, Mcfg.Build(d.Pci!));
        mem.Write(facs, Facs());
        mem.Write(fadt, Fadt.Build(d, (uint)facs, (uint)dsdtAt));
        mem.Write(xsdt, Sdt("XSDT", tables, 8));
        mem.Write(rsdt, Sdt("RSDT", tables, 4));
        mem.Write(rsdp, Rsdp(rsdt, xsdt));
        return new AcpiTableAddresses(rsdp, xsdt, rsdt, fadt, facs, dsdtAt, madtAt, hpet, at) { Mcfg = mcfg };
    }

    /// <summary>The Root System Description Pointer (ACPI 6.3, 5.2.5.3): the ACPI 1.0 checksum covers the first 20 bytes, the extended one all 36.</summary>
    public static byte[] Rsdp(ulong rsdt, ulong xsdt)
    {
        var t = new TableBuilder();
        t.Ascii("RSD PTR ", 8).U8(0).Ascii(AcpiHeader.OemId, 6).U8(RsdpRevision).U32((uint)rsdt);
        t.U32(RsdpLength).U64(xsdt).U8(0).Zeros(3);
        t.FixChecksum(8, 0, RsdpV1Length);
        t.FixChecksum(32, 0, RsdpLength);
        return t.ToArray();
    }

    /// <summary>RSDT (32-bit entries) or XSDT (64-bit entries), revision 1.</summary>
    private static byte[] Sdt(string signature, IEnumerable<ulong> tables, int entrySize)
    {
        var t = AcpiHeader.Begin(signature, 1);
        foreach (var a in tables)
            if (entrySize == 4) t.U32((uint)a); else t.U64(a);
        return AcpiHeader.Finish(t);
    }

    /// <summary>The Firmware ACPI Control Structure (ACPI 6.3, 5.2.10): no checksum; no waking vector (no S3), no global lock user.</summary>
    private static byte[] Facs()
    {
        var t = new TableBuilder();
        t.Ascii("FACS", 4).U32(FacsLength).U32(0 /* hardware signature */).U32(0 /* waking vector */);
        t.U32(0 /* global lock */).U32(0 /* flags */).U64(0 /* X waking vector */).U8(FacsVersion).Zeros(3);
        t.U32(0 /* OSPM flags */).Zeros(24);
        return t.ToArray();
    }
}
