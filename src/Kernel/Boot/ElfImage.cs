using System.Buffers.Binary;

namespace Actorvisor.Kernel.Boot;

/// <summary>One PT_LOAD program header: FileSize bytes from Offset in the file, then zeros to MemorySize.</summary>
public readonly record struct ElfSegment(ulong Offset, ulong VirtualAddress, ulong PhysicalAddress, ulong FileSize, ulong MemorySize);

/// <summary>
/// The parts of an ELF executable a loader needs (System V ABI, "ELF Header" and "Program Header"; the
/// x86-64 psABI for ELFCLASS64): class, machine, entry point and the loadable segments. Only
/// little-endian ET_EXEC files for EM_386 (ELF32) or EM_X86_64 (ELF64) are accepted. Every offset and
/// size is checked against the file, so a truncated or lying header is a <see cref="KernelImageException"/>.
/// </summary>
public sealed class ElfImage
{
    public const byte ClassElf32 = 1, ClassElf64 = 2;
    private const byte DataLittleEndian = 1;
    private const ushort TypeExec = 2;
    private const ushort MachineI386 = 3, MachineX86_64 = 62;
    private const uint PtLoad = 1, PtNote = 4;
    private const int Elf32HeaderSize = 52, Elf64HeaderSize = 64;
    private const int Elf32PhdrSize = 32, Elf64PhdrSize = 56;

    public bool Is64 { get; }
    public ulong Entry { get; }
    public IReadOnlyList<ElfSegment> Segments { get; }
    /// <summary>The owner names of the notes in PT_NOTE segments ("GNU", "Linux", "Xen", ...), in file order.</summary>
    public IReadOnlyList<string> NoteOwners { get; }

    private ElfImage(bool is64, ulong entry, IReadOnlyList<ElfSegment> segments, IReadOnlyList<string> noteOwners)
    {
        Is64 = is64;
        Entry = entry;
        Segments = segments;
        NoteOwners = noteOwners;
    }

    /// <summary>True if the image starts with the ELF magic (0x7F 'E' 'L' 'F').</summary>
    public static bool HasElfMagic(ReadOnlySpan<byte> image) =>
        image.Length >= 4 && image[0] == 0x7F && image[1] == (byte)'E' && image[2] == (byte)'L' && image[3] == (byte)'F';

    public static ElfImage Parse(ReadOnlySpan<byte> f)
    {
        if (!HasElfMagic(f)) throw new KernelImageException("not an ELF file (no ELF magic)");
        if (f.Length < 16) throw new KernelImageException("ELF identification is truncated");
        var cls = f[4];
        if (cls is not (ClassElf32 or ClassElf64)) throw new KernelImageException($"unknown ELF class {cls}");
        if (f[5] != DataLittleEndian) throw new KernelImageException("ELF file is not little-endian");
        var is64 = cls == ClassElf64;
        var headerSize = is64 ? Elf64HeaderSize : Elf32HeaderSize;
        if (f.Length < headerSize) throw new KernelImageException($"ELF header is truncated ({f.Length} bytes, need {headerSize})");

        var type = U16(f, 16);
        var machine = U16(f, 18);
        if (type != TypeExec) throw new KernelImageException($"ELF type {type} is not an executable (ET_EXEC)");
        var wantMachine = is64 ? MachineX86_64 : MachineI386;
        if (machine != wantMachine)
            throw new KernelImageException($"ELF{(is64 ? 64 : 32)} machine {machine} is not {(is64 ? "x86-64 (62)" : "i386 (3)")}");

        ulong entry, phoff;
        int phentsize, phnum;
        if (is64)
        {
            entry = U64(f, 24);
            phoff = U64(f, 32);
            phentsize = U16(f, 54);
            phnum = U16(f, 56);
        }
        else
        {
            entry = U32(f, 24);
            phoff = U32(f, 28);
            phentsize = U16(f, 42);
            phnum = U16(f, 44);
        }
        var minPhdr = is64 ? Elf64PhdrSize : Elf32PhdrSize;
        if (phnum == 0) throw new KernelImageException("ELF file has no program headers");
        if (phentsize < minPhdr) throw new KernelImageException($"ELF program header size {phentsize} is below {minPhdr}");
        var table = (ulong)phentsize * (ulong)phnum;
        if (phoff > (ulong)f.Length || table > (ulong)f.Length - phoff)
            throw new KernelImageException($"ELF program headers (offset 0x{phoff:x}, {phnum} x {phentsize} bytes) run past the end of the file ({f.Length} bytes)");

        var segments = new List<ElfSegment>();
        var owners = new List<string>();
        for (var i = 0; i < phnum; i++)
        {
            var p = f.Slice((int)phoff + i * phentsize, phentsize);
            if (U32(p, 0) == PtNote) ReadNoteOwners(f, is64 ? U64(p, 8) : U32(p, 4), is64 ? U64(p, 32) : U32(p, 16), owners);
            if (U32(p, 0) != PtLoad) continue;
            var s = is64
                ? new ElfSegment(U64(p, 8), U64(p, 16), U64(p, 24), U64(p, 32), U64(p, 40))
                : new ElfSegment(U32(p, 4), U32(p, 8), U32(p, 12), U32(p, 16), U32(p, 20));
            if (s.FileSize > s.MemorySize)
                throw new KernelImageException($"ELF segment {i}: file size 0x{s.FileSize:x} exceeds memory size 0x{s.MemorySize:x}");
            if (s.Offset > (ulong)f.Length || s.FileSize > (ulong)f.Length - s.Offset)
                throw new KernelImageException($"ELF segment {i}: bytes 0x{s.Offset:x}+0x{s.FileSize:x} run past the end of the file ({f.Length} bytes): truncated?");
            if (s.MemorySize == 0) continue;
            if (s.PhysicalAddress + s.MemorySize < s.PhysicalAddress)
                throw new KernelImageException($"ELF segment {i}: 0x{s.PhysicalAddress:x}+0x{s.MemorySize:x} wraps around the address space");
            segments.Add(s);
        }
        if (segments.Count == 0) throw new KernelImageException("ELF file has no loadable (PT_LOAD) segment");
        return new ElfImage(is64, entry, segments, owners);
    }

    /// <summary>
    /// Walks one PT_NOTE segment: each note is namesz, descsz, type, then the name and the descriptor, each
    /// padded to 4 bytes. A note that runs off the segment or the file ends the walk: notes only identify.
    /// </summary>
    private static void ReadNoteOwners(ReadOnlySpan<byte> f, ulong offset, ulong size, List<string> owners)
    {
        if (offset > (ulong)f.Length || size > (ulong)f.Length - offset) return;
        var notes = f.Slice((int)offset, (int)size);
        var at = 0;
        while (notes.Length - at >= 12)
        {
            var nameSize = U32(notes, at);
            var descSize = U32(notes, at + 4);
            var namePadded = (nameSize + 3UL) & ~3UL;
            var descPadded = (descSize + 3UL) & ~3UL;
            if (12 + namePadded + descPadded > (ulong)(notes.Length - at)) return;
            var name = notes.Slice(at + 12, (int)nameSize);
            owners.Add(System.Text.Encoding.ASCII.GetString(name.TrimEnd((byte)0)));
            at += (int)(12 + namePadded + descPadded);
        }
    }

    /// <summary>
    /// The entry point as a physical address. A kernel linked at high virtual addresses (Linux's vmlinux)
    /// names its entry virtually; the segment holding it says where that lies physically. An entry that is
    /// in no segment's virtual range is taken as physical.
    /// </summary>
    public ulong PhysicalEntry()
    {
        foreach (var s in Segments)
            if (Entry >= s.VirtualAddress && Entry - s.VirtualAddress < s.MemorySize)
                return Entry - s.VirtualAddress + s.PhysicalAddress;
        return Entry;
    }

    private static ushort U16(ReadOnlySpan<byte> b, int o) => BinaryPrimitives.ReadUInt16LittleEndian(b[o..]);
    private static uint U32(ReadOnlySpan<byte> b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b[o..]);
    private static ulong U64(ReadOnlySpan<byte> b, int o) => BinaryPrimitives.ReadUInt64LittleEndian(b[o..]);
}

/// <summary>A kernel image that cannot be loaded: the message says why, for the user.</summary>
public sealed class KernelImageException(string message) : Exception(message);
