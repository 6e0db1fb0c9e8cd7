using System.Buffers.Binary;
using System.Text;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot.Linux;

/// <summary>Where a Linux direct boot put things, for the caller's logs and tests.</summary>
public sealed record LinuxBootLayout(ulong KernelAddress, ulong Entry, ulong ZeroPage, ulong CmdLine, ulong InitrdAddress, ulong InitrdSize);

/// <summary>What a Linux kernel is given besides its image.</summary>
/// <param name="AcpiRsdp">The RSDP's address for boot_params.acpi_rsdp_addr (0: the kernel scans the BIOS area).</param>
public sealed record LinuxBootArguments(string Cmdline, byte[] Initrd, ulong AcpiRsdp = 0);

/// <summary>
/// Direct boot of Linux by the 64-bit boot protocol (Documentation/arch/x86/boot.rst), from a bzImage (the
/// protected-mode kernel at its preferred address, which decompresses itself) or from an uncompressed
/// vmlinux ELF (its segments at their physical addresses, entered at startup_64, as Firecracker does).
/// Both get the command line, the initrd near the top of low RAM and boot_params with a setup header and
/// the e820 map. <see cref="Enter"/> then puts the CPU in long mode at the 64-bit entry with RSI =
/// boot_params, CS = 0x10, DS/ES/SS = 0x18 and interrupts off, the first 4 GiB identity-mapped.
/// </summary>
public static class LinuxLoader
{
    // Above the boot page tables (CpuSetup: 0x1000-0x7FFF).
    public const ulong ZeroPageAddress = 0x8000;
    public const ulong CmdLineAddress = 0x20000;
    public const ulong GdtAddress = 0x9000;
    public const ushort BootCs = 0x10, BootDs = 0x18;
    /// <summary>The setup header we write for a vmlinux claims this protocol version (2.15: acpi_rsdp_addr, ext fields).</summary>
    public const ushort VmlinuxProtocolVersion = 0x20F;
    /// <summary>What Linux's own setup header says of the command line's size for a vmlinux we describe.</summary>
    public const uint VmlinuxCmdlineSize = 2047;

    /// <summary>True when an ELF image is a Linux kernel: it carries notes owned by "Linux" (or "Xen", its PVH/Xen entry notes).</summary>
    public static bool IsVmlinux(ElfImage elf) => elf.Is64 && elf.NoteOwners.Any(o => o is "Linux" or "Xen");

    public static LinuxBootLayout LoadBzImage(GuestMemory mem, ReadOnlySpan<byte> image, LinuxBootArguments args)
    {
        var h = BzImageHeader.Parse(image);
        var kernel = image[h.KernelOffset..];

        // The kernel decompresses itself in place and needs init_size bytes from its load address.
        var load = h.PrefAddress != 0 ? h.PrefAddress : 0x100000;
        var need = Math.Max((ulong)h.InitSize, (ulong)kernel.Length);
        if (!mem.IsRam(load, need))
            throw new KernelImageException($"the kernel needs {need >> 20} MiB from 0x{load:x}; give the guest more memory (-m)");
        var cmdline = CheckCmdline(args.Cmdline, h.CmdlineSize);
        var initrdAddr = PlaceInitrd(mem, args.Initrd, h.InitrdAddrMax, load + need);

        mem.Write(load, kernel);
        mem.Write(CmdLineAddress, cmdline);
        if (args.Initrd.Length > 0) mem.Write(initrdAddr, args.Initrd);

        Span<byte> zp = stackalloc byte[ZeroPage.Size];
        zp.Clear();
        image.Slice(ZeroPage.OffSetupHeader, h.HeaderLength).CopyTo(zp[ZeroPage.OffSetupHeader..]);
        zp[BzImageHeader.OffLoadFlags] = (byte)(h.LoadFlags | BzImageHeader.CanUseHeap);
        WriteZeroPage(mem, zp, initrdAddr, args);
        return new LinuxBootLayout(load, load + BzImageHeader.Entry64Offset, ZeroPageAddress, CmdLineAddress, initrdAddr, (ulong)args.Initrd.Length);
    }

    /// <summary>
    /// Loads a vmlinux: its PT_LOAD segments at their physical addresses and the ELF entry, which the
    /// kernel's linker script makes the physical address of startup_64. boot_params gets a setup header
    /// written here, since a vmlinux has none.
    /// </summary>
    public static LinuxBootLayout LoadVmlinux(GuestMemory mem, ReadOnlySpan<byte> image, LinuxBootArguments args)
    {
        var elf = ElfImage.Parse(image);
        if (!IsVmlinux(elf)) throw new KernelImageException("the ELF file is not a 64-bit Linux vmlinux (no \"Linux\" or \"Xen\" ELF notes)");
        var segs = elf.Segments.OrderBy(s => s.PhysicalAddress).ToArray();
        foreach (var s in segs)
            if (!mem.IsRam(s.PhysicalAddress, s.MemorySize))
                throw new KernelImageException($"vmlinux segment at 0x{s.PhysicalAddress:x}-0x{s.PhysicalAddress + s.MemorySize:x} lies outside guest RAM ({mem.RamSize >> 20} MiB); give the guest more memory (-m)");
        var entry = elf.Entry;
        if (!segs.Any(s => entry >= s.PhysicalAddress && entry - s.PhysicalAddress < s.MemorySize))
            throw new KernelImageException($"vmlinux entry point 0x{entry:x} is in no segment's physical range");
        var kernelEnd = segs.Max(s => s.PhysicalAddress + s.MemorySize);
        var cmdline = CheckCmdline(args.Cmdline, VmlinuxCmdlineSize);
        var initrdAddr = PlaceInitrd(mem, args.Initrd, 0x7FFF_FFFF, kernelEnd);

        foreach (var s in segs)
        {
            mem.Write(s.PhysicalAddress, image.Slice((int)s.Offset, (int)s.FileSize));
            KernelLoader.ZeroFill(mem, s.PhysicalAddress + s.FileSize, s.MemorySize - s.FileSize);
        }
        mem.Write(CmdLineAddress, cmdline);
        if (args.Initrd.Length > 0) mem.Write(initrdAddr, args.Initrd);

        Span<byte> zp = stackalloc byte[ZeroPage.Size];
        zp.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(zp[BzImageHeader.OffBootFlag..], BzImageHeader.BootFlagMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffHeader..], BzImageHeader.HeaderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(zp[BzImageHeader.OffVersion..], VmlinuxProtocolVersion);
        zp[BzImageHeader.OffLoadFlags] = BzImageHeader.LoadedHigh | BzImageHeader.CanUseHeap;
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffKernelAlignment..], 0x20_0000);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffCmdlineSize..], VmlinuxCmdlineSize);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffInitrdAddrMax..], 0x7FFF_FFFF);
        WriteZeroPage(mem, zp, initrdAddr, args);
        var first = segs[0].PhysicalAddress;
        return new LinuxBootLayout(first, entry, ZeroPageAddress, CmdLineAddress, initrdAddr, (ulong)args.Initrd.Length);
    }

    /// <summary>Puts the CPU in the state the 64-bit boot protocol enters the kernel in.</summary>
    public static void Enter(SoftwareCpu cpu, ulong entry)
    {
        var mem = cpu.Memory;
        CpuSetup.EnterLongMode(cpu, entry);
        // The 64-bit protocol wants __BOOT_CS = 0x10 (64-bit code) and __BOOT_DS = 0x18 in the GDT.
        ulong[] gdt = [0, 0, 0x00AF_9B00_0000_FFFFUL, 0x00CF_9300_0000_FFFFUL];
        for (var i = 0; i < gdt.Length; i++) mem.WriteUInt64(GdtAddress + (ulong)i * 8, gdt[i]);
        cpu.Gdtr = new DescriptorTable { Base = GdtAddress, Limit = (ushort)(gdt.Length * 8 - 1) };
        cpu.Segs[Seg.CS] = SegmentRegister.FromDescriptor(BootCs, gdt[2] | (1UL << 40));
        var ds = SegmentRegister.FromDescriptor(BootDs, gdt[3] | (1UL << 40));
        foreach (var s in new[] { Seg.DS, Seg.ES, Seg.SS, Seg.FS, Seg.GS }) cpu.Segs[s] = ds;
        cpu.Gprs[Gpr.RSI] = ZeroPageAddress;
        cpu.SetFlags(RFlags.Fixed1); // interrupts off
        cpu.UpdateMode();
    }

    private static byte[] CheckCmdline(string cmdline, uint max)
    {
        var cmd = Encoding.ASCII.GetBytes(cmdline + "\0");
        if ((uint)cmd.Length > max + 1)
            throw new KernelImageException($"the command line is {cmd.Length - 1} bytes; this kernel takes at most {max}");
        return cmd;
    }

    /// <summary>The initrd goes as high as allowed, page-aligned, below initrd_addr_max and the top of low RAM, above the kernel.</summary>
    private static ulong PlaceInitrd(GuestMemory mem, byte[] initrd, uint initrdAddrMax, ulong kernelEnd)
    {
        if (initrd.Length == 0) return 0;
        var top = Math.Min((ulong)initrdAddrMax + 1, mem.LowRegion.Size);
        var addr = top >= (ulong)initrd.Length ? (top - (ulong)initrd.Length) & ~0xFFFUL : 0;
        if (addr < kernelEnd)
            throw new KernelImageException($"the initrd ({initrd.Length >> 20} MiB) does not fit beside the kernel; give the guest more memory (-m)");
        return addr;
    }

    /// <summary>Fills in what the loader owns in boot_params (its setup header already in <paramref name="zp"/>) and writes it.</summary>
    private static void WriteZeroPage(GuestMemory mem, Span<byte> zp, ulong initrdAddr, LinuxBootArguments args)
    {
        var initrdSize = (ulong)args.Initrd.Length;
        zp[BzImageHeader.OffTypeOfLoader] = ZeroPage.LoaderTypeUndefined;
        BinaryPrimitives.WriteUInt16LittleEndian(zp[BzImageHeader.OffHeapEndPtr..], 0xFE00);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffCmdLinePtr..], (uint)CmdLineAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffRamdiskImage..], (uint)initrdAddr);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffRamdiskSize..], (uint)initrdSize);
        zp[ZeroPage.OffExtRamdiskImage] = (byte)(initrdAddr >> 32);
        zp[ZeroPage.OffExtRamdiskSize] = (byte)(initrdSize >> 32);
        BinaryPrimitives.WriteUInt64LittleEndian(zp[ZeroPage.OffAcpiRsdpAddr..], args.AcpiRsdp);

        var map = PhysicalMemoryMap.For(mem);
        if (map.Count > ZeroPage.E820MaxEntries) throw new KernelImageException("too many e820 entries");
        zp[ZeroPage.OffE820Entries] = (byte)map.Count;
        for (var i = 0; i < map.Count; i++)
        {
            var e = zp[(ZeroPage.OffE820Table + i * ZeroPage.E820EntrySize)..];
            BinaryPrimitives.WriteUInt64LittleEndian(e, map[i].Base);
            BinaryPrimitives.WriteUInt64LittleEndian(e[8..], map[i].Length);
            BinaryPrimitives.WriteUInt32LittleEndian(e[16..], (uint)map[i].Type);
        }
        // alt_mem_k: KiB of memory above 1 MiB, for kernels that look at it before the e820 map.
        var above1M = map.Where(e => e.Type == E820Type.Ram && e.Base >= PhysicalMemoryMap.HighMemoryStart).Sum(e => (long)e.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[ZeroPage.OffAltMemK..], (uint)Math.Min(above1M / 1024, uint.MaxValue));
        mem.Write(ZeroPageAddress, zp);
    }
}
