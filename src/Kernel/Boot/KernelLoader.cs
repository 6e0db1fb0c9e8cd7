using Actorvisor.Kernel.Boot.Linux;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot;

public enum KernelFormat { FlatBinary, Elf32, Elf64, Multiboot, LinuxBzImage, LinuxVmlinux }

/// <summary>
/// A kernel placed in guest memory: its format says which CPU state it is entered in, <see cref="Entry"/>
/// is the guest-physical entry point. <see cref="Segments"/> lists what an ELF or flat image occupies; a
/// Linux kernel's placement is in <see cref="Linux"/> instead. <see cref="Enter"/> puts a CPU into that state.
/// </summary>
public sealed record LoadedKernel(KernelFormat Format, ulong Entry, IReadOnlyList<(ulong Address, ulong Size)> Segments)
{
    /// <summary>
    /// The stack pointer an ELF kernel starts with: the top of conventional memory below the EBDA, clear of
    /// the boot GDT and page tables. A kernel normally sets its own; this one makes an early CALL safe.
    /// </summary>
    public const ulong ElfStackTop = 0x9F000;

    /// <summary>Linux: where the loader put the kernel, boot_params, the command line and the initrd.</summary>
    public LinuxBootLayout? Linux { get; init; }
    /// <summary>Multiboot: the information structure's address, passed in EBX.</summary>
    public uint MultibootInfoAddress { get; init; }
    /// <summary>Multiboot: where the loader put the boot GDT (away from the first pages the kernel owns).</summary>
    public ulong BootGdtAddress { get; init; } = CpuSetup.GdtAddress;

    /// <summary>Puts the CPU into the state this kernel's format is entered in (BIOS boot sector, multiboot-like flat 32-bit, or long mode).</summary>
    public void Enter(SoftwareCpu cpu)
    {
        switch (Format)
        {
            case KernelFormat.FlatBinary:
                CpuSetup.EnterRealMode(cpu, 0, (ushort)KernelLoader.BootSectorAddress, sp: (ushort)KernelLoader.BootSectorAddress);
                // A BIOS hands the boot sector the drive it was read from in DL: 0x80, the first hard disk.
                cpu.Gprs[Gpr.RDX] = (cpu.Gprs[Gpr.RDX] & ~0xFFUL) | 0x80;
                break;
            case KernelFormat.Elf32:
                CpuSetup.EnterFlatProtectedMode(cpu, (uint)Entry, (uint)ElfStackTop);
                break;
            case KernelFormat.Elf64:
                CpuSetup.EnterLongMode(cpu, Entry, ElfStackTop);
                break;
            case KernelFormat.LinuxBzImage or KernelFormat.LinuxVmlinux:
                LinuxLoader.Enter(cpu, Entry);
                break;
            case KernelFormat.Multiboot:
                // Spec 3.2: EAX = magic, EBX = info, CS/DS/ES/FS/GS/SS flat, CR0.PG = 0, IF = 0. ESP is
                // undefined by the spec; ours is the ELF one, so an early CALL works.
                CpuSetup.EnterFlatProtectedMode(cpu, (uint)Entry, (uint)ElfStackTop, BootGdtAddress, writeGdt: false);
                cpu.Gprs[Gpr.RAX] = MultibootHeader.BootloaderMagic;
                cpu.Gprs[Gpr.RBX] = MultibootInfoAddress;
                break;
        }
    }
}

/// <summary>
/// Loads a kernel image into guest RAM. An image with a valid Multiboot header in its first 8 KiB is a
/// Multiboot kernel (<see cref="MultibootLoader"/>), whatever else it is. A Linux bzImage (boot flag and
/// "HdrS") or a Linux vmlinux (an ELF64 with Linux's ELF notes) boots by the Linux boot protocol
/// (<see cref="LinuxLoader"/>). Another ELF file (by its magic) is loaded at its segments' physical
/// addresses: ELF32 is entered in flat 32-bit protected mode, ELF64 in long mode with the first 4 GiB
/// identity-mapped. Anything else is a flat binary, loaded at 0x7C00 and entered in real mode at
/// 0000:7C00, as a BIOS runs a boot sector. Every check runs before the first byte is written, so a bad
/// image leaves memory untouched and says why in a <see cref="KernelImageException"/>.
/// </summary>
public static class KernelLoader
{
    public const ulong BootSectorAddress = 0x7C00;
    /// <summary>A flat binary must end below the EBDA and the legacy video hole, like anything a BIOS loads low.</summary>
    public const ulong ConventionalMemoryEnd = 0xA0000;
    /// <summary>The boot GDT and page tables <see cref="CpuSetup"/> writes: ELF segments must stay out.</summary>
    public const ulong SetupAreaStart = CpuSetup.SetupArea, SetupAreaEnd = 0x8000;
    /// <summary>The identity map of long-mode entry covers the first 4 GiB: an ELF64 kernel must lie below it.</summary>
    public const ulong IdentityMapEnd = 4UL << 30;

    /// <param name="cmdline">The user's command line (Multiboot kernels only; null: none given).</param>
    /// <param name="modules">Module files and their optional strings (Multiboot kernels only). A module's
    /// string is its file name, followed by the given string, as GRUB and QEMU pass them.</param>
    /// <param name="cmdline">The user's command line (Multiboot and Linux kernels; null: none given).</param>
    /// <param name="modules">Module files and their optional strings (Multiboot kernels only). A module's
    /// string is its file name, followed by the given string, as GRUB and QEMU pass them.</param>
    /// <param name="initrdPath">An initial ramdisk (Linux kernels only).</param>
    /// <param name="acpiRsdp">Where the VM's ACPI RSDP is, for a Linux kernel's boot_params (0: none).</param>
    public static LoadedKernel LoadFile(GuestMemory memory, string path, string? cmdline = null,
        IReadOnlyList<(string Path, string? Text)>? modules = null, string? initrdPath = null, ulong acpiRsdp = 0)
    {
        var image = ReadImageFile(memory, path, "kernel");
        var loaded = (modules ?? []).Select(m => new MultibootModule(ReadImageFile(memory, m.Path, "module"),
            string.IsNullOrEmpty(m.Text) ? m.Path : $"{m.Path} {m.Text}")).ToArray();
        var initrd = initrdPath is null ? null : ReadImageFile(memory, initrdPath, "initrd");
        return Load(memory, image, new BootArguments(path, cmdline, loaded) { Initrd = initrd, AcpiRsdp = acpiRsdp });
    }

    private static byte[] ReadImageFile(GuestMemory memory, string path, string what)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new KernelImageException($"{what} file '{path}' does not exist");
            if ((ulong)info.Length > memory.RamSize)
                throw new KernelImageException($"{what} file '{path}' ({info.Length} bytes) is larger than guest RAM ({memory.RamSize >> 20} MiB)");
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KernelImageException($"cannot read {what} file '{path}': {e.Message}");
        }
    }

    public static LoadedKernel Load(GuestMemory memory, ReadOnlySpan<byte> image, BootArguments? args = null)
    {
        if (image.IsEmpty) throw new KernelImageException("kernel image is empty");
        if (MultibootHeader.Find(image) is { } header)
        {
            if (args?.Initrd is not null)
                throw new KernelImageException("an initrd is for Linux kernels; give a Multiboot kernel its files with --module");
            return MultibootLoader.Load(memory, image, header, args ?? new BootArguments("kernel"));
        }
        if (BzImageHeader.LooksLikeBzImage(image))
            return LoadLinux(KernelFormat.LinuxBzImage, LinuxLoader.LoadBzImage(memory, image, LinuxArguments(args)));
        var elf = ElfImage.HasElfMagic(image) ? ElfImage.Parse(image) : null;
        if (elf is not null && LinuxLoader.IsVmlinux(elf))
            return LoadLinux(KernelFormat.LinuxVmlinux, LinuxLoader.LoadVmlinux(memory, image, LinuxArguments(args)));
        if (args is { AnyGiven: true } || args?.Initrd is not null)
        {
            var kind = elf is null ? "a flat binary" : elf.Is64 ? "an ELF64" : "an ELF32";
            throw new KernelImageException($"a command line, modules and an initrd are for Multiboot or Linux kernels; this kernel is {kind} (no Multiboot header, not a bzImage or vmlinux)");
        }
        return elf is not null ? LoadElf(memory, image) : LoadFlat(memory, image);
    }

    private static LinuxBootArguments LinuxArguments(BootArguments? args)
    {
        if (args is { ModuleList.Count: > 0 })
            throw new KernelImageException("modules are for Multiboot kernels; give a Linux kernel its files in an --initrd");
        return new LinuxBootArguments(args?.Cmdline ?? "", args?.Initrd ?? [], args?.AcpiRsdp ?? 0);
    }

    private static LoadedKernel LoadLinux(KernelFormat format, LinuxBootLayout layout) =>
        new(format, layout.Entry, []) { Linux = layout };

    private static LoadedKernel LoadFlat(GuestMemory memory, ReadOnlySpan<byte> image)
    {
        var end = BootSectorAddress + (ulong)image.Length;
        if (end > ConventionalMemoryEnd)
            throw new KernelImageException(
                $"flat binary of {image.Length} bytes does not fit between 0x{BootSectorAddress:x} and 0x{ConventionalMemoryEnd:x} (at most {ConventionalMemoryEnd - BootSectorAddress} bytes)");
        memory.Write(BootSectorAddress, image);
        return new LoadedKernel(KernelFormat.FlatBinary, BootSectorAddress, [(BootSectorAddress, (ulong)image.Length)]);
    }

    private static LoadedKernel LoadElf(GuestMemory memory, ReadOnlySpan<byte> image)
    {
        var elf = ElfImage.Parse(image);
        var kind = elf.Is64 ? "ELF64" : "ELF32";
        var segs = elf.Segments.OrderBy(s => s.PhysicalAddress).ToArray();
        for (var i = 0; i < segs.Length; i++)
        {
            var s = segs[i];
            var range = $"0x{s.PhysicalAddress:x}-0x{s.PhysicalAddress + s.MemorySize:x}";
            if (!memory.IsRam(s.PhysicalAddress, s.MemorySize))
                throw new KernelImageException($"{kind} segment at {range} lies outside guest RAM ({memory.RamSize >> 20} MiB)");
            if (s.PhysicalAddress < SetupAreaEnd && s.PhysicalAddress + s.MemorySize > SetupAreaStart)
                throw new KernelImageException($"{kind} segment at {range} overlaps the boot setup area 0x{SetupAreaStart:x}-0x{SetupAreaEnd:x} (GDT and page tables)");
            if (elf.Is64 && s.PhysicalAddress + s.MemorySize > IdentityMapEnd)
                throw new KernelImageException($"{kind} segment at {range} lies above 4 GiB, outside the identity map long-mode entry sets up");
            if (i > 0 && segs[i - 1].PhysicalAddress + segs[i - 1].MemorySize > s.PhysicalAddress)
                throw new KernelImageException($"{kind} segments at 0x{segs[i - 1].PhysicalAddress:x} and 0x{s.PhysicalAddress:x} overlap");
        }
        var entry = elf.PhysicalEntry();
        if (!segs.Any(s => entry >= s.PhysicalAddress && entry - s.PhysicalAddress < s.MemorySize))
            throw new KernelImageException($"{kind} entry point 0x{elf.Entry:x} is in no loaded segment");
        if (!elf.Is64 && entry > uint.MaxValue)
            throw new KernelImageException($"{kind} entry point 0x{entry:x} is above 4 GiB");

        foreach (var s in segs)
        {
            memory.Write(s.PhysicalAddress, image.Slice((int)s.Offset, (int)s.FileSize));
            ZeroFill(memory, s.PhysicalAddress + s.FileSize, s.MemorySize - s.FileSize);
        }
        return new LoadedKernel(elf.Is64 ? KernelFormat.Elf64 : KernelFormat.Elf32, entry,
            segs.Select(s => (s.PhysicalAddress, s.MemorySize)).ToArray());
    }

    /// <summary>Zeroes the part of a segment past its file bytes (.bss), in chunks a span can hold.</summary>
    internal static void ZeroFill(GuestMemory memory, ulong address, ulong length)
    {
        while (length > 0)
        {
            var n = (int)Math.Min(length, 1 << 30);
            memory.GetSpan(address, n).Clear();
            memory.NoteWrite(address, (ulong)n);
            address += (ulong)n;
            length -= (ulong)n;
        }
    }
}
