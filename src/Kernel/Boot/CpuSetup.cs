using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot;

/// <summary>
/// Puts a CPU directly into the state a loader hands over: real mode at a CS:IP (a BIOS entering a boot
/// sector), flat 32-bit protected mode (multiboot), or 64-bit long mode with the first 4 GiB identity-mapped.
/// The GDT and page tables it needs are written into guest memory at <see cref="SetupArea"/>, so the guest
/// can reload its segment registers from a real GDT.
/// </summary>
public static class CpuSetup
{
    /// <summary>Guest-physical area for the boot GDT and page tables (below the EBDA, above the boot sector).</summary>
    public const ulong SetupArea = 0x1000;
    public const ulong GdtAddress = SetupArea;            // 0x1000: 8 descriptors
    public const ulong Pml4Address = SetupArea + 0x1000;  // 0x2000
    public const ulong PdptAddress = SetupArea + 0x2000;  // 0x3000
    public const ulong PdAddress = SetupArea + 0x3000;    // 0x4000..0x7FFF: 4 page directories of 2 MiB pages

    /// <summary>Selectors of the boot GDT.</summary>
    public const ushort Code64 = 0x08, Code32 = 0x10, Data = 0x18, Code16 = 0x20, Data16 = 0x28;

    /// <summary>The boot GDT: null, 64-bit code, 32-bit code, flat data, 16-bit code and data.</summary>
    public static readonly ulong[] Gdt =
    [
        0,
        0x00AF_9B00_0000_FFFFUL, // 0x08: 64-bit code, DPL 0
        0x00CF_9B00_0000_FFFFUL, // 0x10: 32-bit code, 4 GiB flat
        0x00CF_9300_0000_FFFFUL, // 0x18: data, 4 GiB flat, writable
        0x0000_9B00_0000_FFFFUL, // 0x20: 16-bit code, 64 KiB
        0x0000_9300_0000_FFFFUL, // 0x28: 16-bit data, 64 KiB
    ];

    public static void EnterRealMode(SoftwareCpu cpu, ushort cs, ushort ip, ushort sp = 0x7C00)
    {
        cpu.Reset();
        var code = SegmentRegister.RealMode(cs, SegmentRegister.AttrP | SegmentRegister.AttrS | SegmentRegister.AttrCode |
                                                SegmentRegister.AttrReadable | SegmentRegister.AttrAccessed);
        cpu.Segs[Seg.CS] = code;
        cpu.Rip = ip;
        cpu.Gprs[Gpr.RSP] = sp;
        cpu.Idtr = new DescriptorTable { Base = 0, Limit = 0x3FF };
        cpu.UpdateMode();
    }

    public static void WriteGdt(GuestMemory memory, ulong address = GdtAddress)
    {
        for (var i = 0; i < Gdt.Length; i++) memory.WriteUInt64(address + (ulong)i * 8, Gdt[i]);
    }

    /// <summary>
    /// Flat 32-bit protected mode, paging off, interrupts off (the multiboot hand-over state). The GDT is
    /// written at <paramref name="gdtAddress"/>, or not at all when <paramref name="writeGdt"/> is false
    /// (the caller has put it there).
    /// </summary>
    public static void EnterFlatProtectedMode(SoftwareCpu cpu, uint eip, uint esp = 0, ulong gdtAddress = GdtAddress, bool writeGdt = true)
    {
        cpu.Reset();
        if (writeGdt) WriteGdt(cpu.Memory, gdtAddress);
        cpu.Gdtr = new DescriptorTable { Base = gdtAddress, Limit = (ushort)(Gdt.Length * 8 - 1) };
        cpu.Idtr = new DescriptorTable { Base = 0, Limit = 0 };
        cpu.Cr0 = Cr0.PE | Cr0.ET | Cr0.NE;
        LoadFlat(cpu, Code32, Data);
        cpu.Rip = eip;
        cpu.Gprs[Gpr.RSP] = esp;
        cpu.UpdateMode();
    }

    /// <summary>64-bit long mode with 4-level paging identity-mapping the first 4 GiB in 2 MiB pages.</summary>
    public static void EnterLongMode(SoftwareCpu cpu, ulong rip, ulong rsp = 0)
    {
        cpu.Reset();
        var mem = cpu.Memory;
        WriteGdt(mem);
        WriteIdentityPageTables(mem);
        cpu.Gdtr = new DescriptorTable { Base = GdtAddress, Limit = (ushort)(Gdt.Length * 8 - 1) };
        cpu.Idtr = new DescriptorTable { Base = 0, Limit = 0 };
        cpu.Cr3 = Pml4Address;
        cpu.Cr4 = Cr4.PAE | Cr4.PGE;
        cpu.EferValue = Efer.LME | Efer.LMA | Efer.SCE | Efer.NXE;
        cpu.Cr0 = Cr0.PE | Cr0.ET | Cr0.NE | Cr0.WP | Cr0.PG;
        LoadFlat(cpu, Code64, Data);
        cpu.Rip = rip;
        cpu.Gprs[Gpr.RSP] = rsp;
        cpu.UpdateMode();
        cpu.FlushTlb(includeGlobal: true);
    }

    /// <summary>PML4[0] → PDPT[0..3] → four page directories of 2 MiB pages: 0..4 GiB identity, writable.</summary>
    public static void WriteIdentityPageTables(GuestMemory mem)
    {
        mem.GetSpan(Pml4Address, 0x6000).Clear();
        mem.WriteUInt64(Pml4Address, PdptAddress | 0x3);
        for (ulong g = 0; g < 4; g++)
        {
            var pd = PdAddress + g * 0x1000;
            mem.WriteUInt64(PdptAddress + g * 8, pd | 0x3);
            for (ulong e = 0; e < 512; e++)
                mem.WriteUInt64(pd + e * 8, ((g << 30) + (e << 21)) | 0x83); // present, writable, 2 MiB
        }
    }

    private static void LoadFlat(SoftwareCpu cpu, ushort code, ushort data)
    {
        cpu.Segs[Seg.CS] = SegmentRegister.FromDescriptor(code, Gdt[code >> 3] | (1UL << 40));
        var d = SegmentRegister.FromDescriptor(data, Gdt[data >> 3] | (1UL << 40));
        foreach (var s in new[] { Seg.DS, Seg.ES, Seg.SS, Seg.FS, Seg.GS }) cpu.Segs[s] = d;
    }
}
