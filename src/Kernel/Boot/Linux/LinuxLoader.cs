using System.Buffers.Binary;
using System.Text;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot.Linux;

/// <summary>Where a Linux direct boot put things, for the caller's logs and tests.</summary>
public sealed record LinuxBootLayout(ulong KernelAddress, ulong Entry, ulong ZeroPage, ulong CmdLine, ulong InitrdAddress, ulong InitrdSize);

/// <summary>
/// Direct boot of a bzImage by the 64-bit boot protocol: the protected-mode kernel at its preferred address,
/// the command line, the initrd near the top of low RAM, boot_params with the setup header and the e820
/// map, and the CPU in long mode at the 64-bit entry with RSI = boot_params, CS = 0x10, DS/ES/SS = 0x18, as
/// the protocol requires. The identity map covers the first 4 GiB.
/// </summary>
public static class LinuxLoader
{
    // Above the boot page tables (CpuSetup: 0x1000-0x7FFF).
    public const ulong ZeroPageAddress = 0x8000;
    public const ulong CmdLineAddress = 0x20000;
    public const ulong GdtAddress = 0x9000;
    public const ushort BootCs = 0x10, BootDs = 0x18;

    public static LinuxBootLayout Load(SoftwareCpu cpu, ReadOnlySpan<byte> image, string cmdline, ReadOnlySpan<byte> initrd)
    {
        var mem = cpu.Memory;
        var h = BzImageHeader.Parse(image);
        var kernel = image[h.KernelOffset..];

        // The kernel decompresses itself in place and needs init_size bytes from its load address.
        var load = h.PrefAddress != 0 ? h.PrefAddress : 0x100000;
        var need = Math.Max((ulong)h.InitSize, (ulong)kernel.Length);
        if (!mem.IsRam(load, need))
            throw new KernelImageException($"the kernel needs {need >> 20} MiB from 0x{load:x}; give the guest more memory (-m)");
        mem.Write(load, kernel);

        var cmd = Encoding.ASCII.GetBytes(cmdline + "\0");
        if ((uint)cmd.Length > h.CmdlineSize + 1)
            throw new KernelImageException($"the command line is {cmd.Length - 1} bytes; this kernel takes at most {h.CmdlineSize}");
        mem.Write(CmdLineAddress, cmd);

        // The initrd goes as high as allowed, page-aligned, below initrd_addr_max and the top of low RAM.
        ulong initrdAddr = 0;
        if (initrd.Length > 0)
        {
            var top = Math.Min((ulong)h.InitrdAddrMax + 1, mem.LowRegion.Size);
            if ((ulong)initrd.Length + load + need > top)
                throw new KernelImageException($"the initrd ({initrd.Length >> 20} MiB) does not fit beside the kernel; give the guest more memory (-m)");
            initrdAddr = (top - (ulong)initrd.Length) & ~0xFFFUL;
            mem.Write(initrdAddr, initrd);
        }

        WriteZeroPage(mem, image, h, initrdAddr, (ulong)initrd.Length);

        var entry = load + BzImageHeader.Entry64Offset;
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
        return new LinuxBootLayout(load, entry, ZeroPageAddress, CmdLineAddress, initrdAddr, (ulong)initrd.Length);
    }

    private static void WriteZeroPage(GuestMemory mem, ReadOnlySpan<byte> image, BzImageHeader h, ulong initrdAddr, ulong initrdSize)
    {
        Span<byte> zp = stackalloc byte[ZeroPage.Size];
        zp.Clear();
        image.Slice(ZeroPage.OffSetupHeader, h.HeaderLength).CopyTo(zp[ZeroPage.OffSetupHeader..]);
        zp[BzImageHeader.OffTypeOfLoader] = ZeroPage.LoaderTypeUndefined;
        zp[BzImageHeader.OffLoadFlags] = (byte)(h.LoadFlags | BzImageHeader.CanUseHeap);
        BinaryPrimitives.WriteUInt16LittleEndian(zp[BzImageHeader.OffHeapEndPtr..], 0xFE00);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffCmdLinePtr..], (uint)CmdLineAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffRamdiskImage..], (uint)initrdAddr);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[BzImageHeader.OffRamdiskSize..], (uint)initrdSize);
        zp[ZeroPage.OffExtRamdiskImage] = (byte)(initrdAddr >> 32);
        zp[ZeroPage.OffExtRamdiskSize] = (byte)(initrdSize >> 32);

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
