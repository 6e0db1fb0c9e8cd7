using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot;

/// <summary>
/// What a boot loader hands a kernel besides its image. <paramref name="Cmdline"/> is what the user gave
/// (null: none); a Multiboot kernel gets <paramref name="KernelName"/> in front of it, as QEMU and GRUB pass
/// it, so the command line's first word (argv[0]) is a program name. Only Multiboot kernels take these.
/// </summary>
public sealed record BootArguments(string KernelName, string? Cmdline = null, IReadOnlyList<MultibootModule>? Modules = null)
{
    /// <summary>An initial ramdisk (Linux kernels only); null when none was given.</summary>
    public byte[]? Initrd { get; init; }
    /// <summary>The VM's ACPI RSDP address, for a Linux kernel's boot_params (0: none).</summary>
    public ulong AcpiRsdp { get; init; }
    public IReadOnlyList<MultibootModule> ModuleList => Modules ?? [];
    public bool AnyGiven => Cmdline is not null || ModuleList.Count > 0;

    /// <summary>The command line a Multiboot kernel reads: the kernel's name, then the user's command line.</summary>
    public string MultibootCmdline => string.IsNullOrEmpty(Cmdline) ? KernelName : $"{KernelName} {Cmdline}";
}

/// <summary>
/// Multiboot (version 1) loading (spec 0.6.96, sections 3.1-3.3): the image is placed by its ELF segments,
/// or, when header flag 16 is set, by the header's address fields (the "a.out kludge", which wins over
/// ELF as in GRUB and QEMU). Then the modules, the information structure and a small boot GDT go from
/// 1 MiB or the kernel's end upwards (whichever is higher), never into the first pages of RAM, which such
/// kernels use themselves. ELF64 files are accepted as GRUB does: their segments are loaded and the entry
/// is still called in 32-bit protected mode.
/// </summary>
public static class MultibootLoader
{
    /// <summary>Header flags 0-15 are requirements a loader must fail on if it cannot meet them.</summary>
    private const uint RequiredFlagsMask = 0xFFFF;
    /// <summary>Page-aligned modules and memory information we give; a video mode is a request we may ignore (QEMU does too).</summary>
    private const uint SupportedRequiredFlags = MultibootHeader.FlagPageAlignModules | MultibootHeader.FlagMemoryInfo | MultibootHeader.FlagVideoMode;
    private const ulong FourGiB = 1UL << 32;

    public static LoadedKernel Load(GuestMemory memory, ReadOnlySpan<byte> image, MultibootHeader header, BootArguments args)
    {
        var unsupported = header.Flags & RequiredFlagsMask & ~SupportedRequiredFlags;
        if (unsupported != 0)
            throw new KernelImageException($"the multiboot header requires features 0x{unsupported:x} (flags 0x{header.Flags:x}) this loader does not provide");

        var (segments, entry) = header.HasAddressFields ? FromAddressFields(image, header) : FromElf(image);
        var ordered = segments.OrderBy(s => s.Address).ToArray();
        for (var i = 0; i < ordered.Length; i++)
        {
            var s = ordered[i];
            var range = $"0x{s.Address:x}-0x{s.Address + s.MemorySize:x}";
            if (s.Address + s.MemorySize > FourGiB)
                throw new KernelImageException($"multiboot segment at {range} lies above 4 GiB");
            if (!memory.IsRam(s.Address, s.MemorySize))
                throw new KernelImageException($"multiboot segment at {range} lies outside guest RAM ({memory.RamSize >> 20} MiB)");
            if (i > 0 && ordered[i - 1].Address + ordered[i - 1].MemorySize > s.Address)
                throw new KernelImageException($"multiboot segments at 0x{ordered[i - 1].Address:x} and 0x{s.Address:x} overlap");
        }
        if (!ordered.Any(s => entry >= s.Address && entry - s.Address < s.MemorySize))
            throw new KernelImageException($"multiboot entry point 0x{entry:x} is in no loaded segment");

        var kernelEnd = ordered.Max(s => s.Address + s.MemorySize);
        var start = Math.Max(kernelEnd, PhysicalMemoryMap.HighMemoryStart);
        var gdtBytes = CpuSetup.Gdt.Length * 8;
        var layout = MultibootInfo.Plan(memory, start, args.MultibootCmdline, args.ModuleList,
            (header.Flags & MultibootHeader.FlagPageAlignModules) != 0, gdtBytes);

        // Every check is done: from here on, write.
        foreach (var s in ordered)
        {
            memory.Write(s.Address, image.Slice(s.FileOffset, s.FileSize));
            KernelLoader.ZeroFill(memory, s.Address + (ulong)s.FileSize, s.MemorySize - (ulong)s.FileSize);
        }
        var info = MultibootInfo.Write(memory, layout);
        // A boot GDT with CpuSetup's selectors, beside the boot information rather than at 0x1000, which the
        // kernel owns. The spec lets GDTR be invalid; a valid one costs nothing and helps kernels that reload
        // a segment register before installing their own GDT.
        CpuSetup.WriteGdt(memory, layout.Extra);

        return new LoadedKernel(KernelFormat.Multiboot, entry, ordered.Select(s => (s.Address, s.MemorySize)).ToArray())
        {
            MultibootInfoAddress = info,
            BootGdtAddress = layout.Extra,
        };
    }

    private readonly record struct Piece(int FileOffset, int FileSize, ulong Address, ulong MemorySize);

    /// <summary>Spec 3.1.3: load_addr..load_end_addr from the file offset that puts the header at header_addr; zeros to bss_end_addr.</summary>
    private static (Piece[] Segments, ulong Entry) FromAddressFields(ReadOnlySpan<byte> image, MultibootHeader h)
    {
        if (h.FileOffset + 32 > image.Length)
            throw new KernelImageException("the multiboot header's address fields run past the end of the file");
        if (h.LoadAddr > h.HeaderAddr)
            throw new KernelImageException($"multiboot load_addr 0x{h.LoadAddr:x} is above header_addr 0x{h.HeaderAddr:x}");
        var fileStart = (long)h.FileOffset - (h.HeaderAddr - h.LoadAddr);
        if (fileStart < 0)
            throw new KernelImageException($"multiboot header_addr 0x{h.HeaderAddr:x} - load_addr 0x{h.LoadAddr:x} reaches before the start of the file");
        long fileSize;
        if (h.LoadEndAddr == 0) fileSize = image.Length - fileStart;
        else if (h.LoadEndAddr < h.LoadAddr)
            throw new KernelImageException($"multiboot load_end_addr 0x{h.LoadEndAddr:x} is below load_addr 0x{h.LoadAddr:x}");
        else fileSize = h.LoadEndAddr - h.LoadAddr;
        if (fileStart + fileSize > image.Length)
            throw new KernelImageException($"multiboot load_addr..load_end_addr ({fileSize} bytes from file offset {fileStart}) runs past the end of the file ({image.Length} bytes)");
        var loadEnd = h.LoadAddr + (ulong)fileSize;
        ulong memSize = (ulong)fileSize;
        if (h.BssEndAddr != 0)
        {
            if (h.BssEndAddr < loadEnd)
                throw new KernelImageException($"multiboot bss_end_addr 0x{h.BssEndAddr:x} is below the end of the loaded image 0x{loadEnd:x}");
            memSize = h.BssEndAddr - h.LoadAddr;
        }
        if (memSize == 0) throw new KernelImageException("the multiboot address fields load nothing");
        return ([new Piece((int)fileStart, (int)fileSize, h.LoadAddr, memSize)], h.EntryAddr);
    }

    private static (Piece[] Segments, ulong Entry) FromElf(ReadOnlySpan<byte> image)
    {
        if (!ElfImage.HasElfMagic(image))
            throw new KernelImageException("the multiboot kernel is not an ELF file and its header has no address fields (flag 16)");
        var elf = ElfImage.Parse(image);
        var entry = elf.PhysicalEntry();
        if (entry >= FourGiB) throw new KernelImageException($"multiboot entry point 0x{entry:x} is above 4 GiB");
        return (elf.Segments.Select(s => new Piece((int)s.Offset, (int)s.FileSize, s.PhysicalAddress, s.MemorySize)).ToArray(), entry);
    }
}
