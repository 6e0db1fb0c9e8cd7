using System.Buffers.Binary;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.TestSupport;

/// <summary>One loadable segment for <see cref="GuestImages.Elf32"/> / <see cref="GuestImages.Elf64"/>.</summary>
public sealed record ElfSegmentSpec(ulong VirtualAddress, ulong PhysicalAddress, byte[] Data, ulong MemorySize);

/// <summary>
/// Builds guest images for tests: code assembled with Iced, wrapped in a minimal ELF executable (header and
/// program headers only, System V ABI layout) or left flat.
/// </summary>
public static class GuestImages
{
    public const ushort Com1 = 0x3F8;
    public const ushort Com1Lsr = Com1 + 5;
    public const byte LsrThrEmpty = 0x20;

    public static byte[] Assemble(int bitness, ulong origin, Action<Assembler> program)
    {
        var a = new Assembler(bitness);
        program(a);
        var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), origin);
        return stream.ToArray();
    }

    /// <summary>
    /// A program that writes <paramref name="text"/> to COM1 the way a polled driver does (wait for LSR.THRE,
    /// then write THR) and stops with CLI; HLT. The text follows the code; its address is found by
    /// assembling twice (the instruction sizes do not depend on it).
    /// </summary>
    public static byte[] Hello(int bitness, ulong origin, string text)
    {
        var probe = Assemble(bitness, origin, a => HelloCode(a, bitness, origin));
        var code = Assemble(bitness, origin, a => HelloCode(a, bitness, origin + (ulong)probe.Length));
        if (code.Length != probe.Length) throw new InvalidOperationException("hello program changed size between passes");
        return [.. code, .. System.Text.Encoding.ASCII.GetBytes(text), 0];
    }

    private static void HelloCode(Assembler a, int bitness, ulong message)
    {
        var next = a.CreateLabel();
        var wait = a.CreateLabel();
        var done = a.CreateLabel();
        switch (bitness)
        {
            case 16: a.mov(bx, (ushort)message); break;
            case 32: a.mov(ebx, (uint)message); break;
            default: a.mov(rbx, message); break;
        }
        a.Label(ref next);
        a.mov(al, bitness switch { 16 => __byte_ptr[bx], 32 => __byte_ptr[ebx], _ => __byte_ptr[rbx] });
        a.test(al, al);
        a.jz(done);
        a.mov(ah, al);
        a.Label(ref wait);
        a.mov(dx, Com1Lsr);
        a.@in(al, dx);
        a.test(al, LsrThrEmpty);
        a.jz(wait);
        a.mov(al, ah);
        a.mov(dx, Com1);
        a.@out(dx, al);
        switch (bitness)
        {
            case 16: a.inc(bx); break;
            case 32: a.inc(ebx); break;
            default: a.inc(rbx); break;
        }
        a.jmp(next);
        a.Label(ref done);
        a.cli();
        a.hlt();
    }

    public static byte[] Elf32(uint entry, params ElfSegmentSpec[] segments) => Elf(false, entry, segments);
    public static byte[] Elf64(ulong entry, params ElfSegmentSpec[] segments) => Elf(true, entry, segments);

    /// <summary>ELF header, then the program header table, then each segment's bytes (16-byte aligned).</summary>
    public static byte[] Elf(bool is64, ulong entry, ElfSegmentSpec[] segments, ushort machine = 0, ushort type = 2)
    {
        var ehsize = is64 ? 64 : 52;
        var phentsize = is64 ? 56 : 32;
        var offset = ehsize + phentsize * segments.Length;
        var offsets = new int[segments.Length];
        for (var i = 0; i < segments.Length; i++)
        {
            offset = (offset + 15) & ~15;
            offsets[i] = offset;
            offset += segments[i].Data.Length;
        }
        var f = new byte[offset];
        f[0] = 0x7F; f[1] = (byte)'E'; f[2] = (byte)'L'; f[3] = (byte)'F';
        f[4] = (byte)(is64 ? 2 : 1); // EI_CLASS
        f[5] = 1;                    // EI_DATA: little-endian
        f[6] = 1;                    // EI_VERSION
        U16(f, 16, type);            // e_type (2 = ET_EXEC)
        U16(f, 18, machine != 0 ? machine : (ushort)(is64 ? 62 : 3)); // e_machine
        U32(f, 20, 1);               // e_version
        if (is64)
        {
            U64(f, 24, entry);
            U64(f, 32, (ulong)ehsize); // e_phoff
            U16(f, 52, (ushort)ehsize);
            U16(f, 54, (ushort)phentsize);
            U16(f, 56, (ushort)segments.Length);
        }
        else
        {
            U32(f, 24, (uint)entry);
            U32(f, 28, (uint)ehsize);
            U16(f, 40, (ushort)ehsize);
            U16(f, 42, (ushort)phentsize);
            U16(f, 44, (ushort)segments.Length);
        }
        for (var i = 0; i < segments.Length; i++)
        {
            var s = segments[i];
            var p = ehsize + i * phentsize;
            U32(f, p, 1); // PT_LOAD
            if (is64)
            {
                U32(f, p + 4, 5); // PF_R | PF_X
                U64(f, p + 8, (ulong)offsets[i]);
                U64(f, p + 16, s.VirtualAddress);
                U64(f, p + 24, s.PhysicalAddress);
                U64(f, p + 32, (ulong)s.Data.Length);
                U64(f, p + 40, s.MemorySize);
                U64(f, p + 48, 0x1000);
            }
            else
            {
                U32(f, p + 4, (uint)offsets[i]);
                U32(f, p + 8, (uint)s.VirtualAddress);
                U32(f, p + 12, (uint)s.PhysicalAddress);
                U32(f, p + 16, (uint)s.Data.Length);
                U32(f, p + 20, (uint)s.MemorySize);
                U32(f, p + 24, 5);
                U32(f, p + 28, 0x1000);
            }
            s.Data.CopyTo(f, offsets[i]);
        }
        return f;
    }

    /// <summary>A flat binary: hello in real mode at 0000:7C00.</summary>
    public static byte[] HelloFlat(string text) => Hello(16, 0x7C00, text);

    /// <summary>An ELF32 whose one segment at <paramref name="address"/> prints the text in flat protected mode.</summary>
    public static byte[] HelloElf32(string text, uint address = 0x100000)
    {
        var code = Hello(32, address, text);
        return Elf32(address, new ElfSegmentSpec(address, address, code, (ulong)code.Length));
    }

    /// <summary>A 64-bit interrupt gate (selector 08h, present, DPL 0, type 1110b) for <paramref name="handler"/>. Uses RAX.</summary>
    public static void InstallGate64(Assembler a, ulong idt, int vector, ulong handler)
    {
        var low = (handler & 0xFFFF) | (0x08UL << 16) | (0x8EUL << 40) | ((handler >> 16 & 0xFFFF) << 48);
        a.mov(rax, low);
        a.mov(__qword_ptr[idt + (ulong)vector * 16], rax);
        a.mov(__qword_ptr[idt + (ulong)vector * 16 + 8], 0);
    }

    /// <summary>
    /// An interrupt gate for <paramref name="handler"/> at <paramref name="vector"/> in a full-size IDT at
    /// <paramref name="idt"/>, loaded from a descriptor written at <paramref name="idtr"/>. Uses RAX.
    /// </summary>
    public static void LoadIdt64WithGate(Assembler a, int vector, ulong handler, ulong idt, ulong idtr)
    {
        InstallGate64(a, idt, vector, handler);
        a.mov(__word_ptr[idtr], 0xFFF);
        a.mov(rax, idt);
        a.mov(__qword_ptr[idtr + 2], rax);
        a.lidt(__[idtr]);
    }

    /// <summary>
    /// 64-bit kernels' interrupt set-up: an interrupt gate for <paramref name="handler"/> at <paramref name="vector"/> in an
    /// IDT at <paramref name="idt"/> (loaded from a descriptor at <paramref name="idtr"/>), the 8259s masked, the LAPIC
    /// enabled, and IOAPIC pin <paramref name="pin"/> sent to that vector on CPU 0 (fixed, edge, unmasked). Uses RAX, RBX, RCX.
    /// </summary>
    public static void RouteIoApicPin64(Assembler a, int pin, int vector, ulong handler, ulong idt, ulong idtr)
    {
        LoadIdt64WithGate(a, vector, handler, idt, idtr);
        a.mov(al, 0xFF);                              // mask the 8259s
        a.@out(0x21, al);
        a.@out(0xA1, al);
        a.mov(rbx, 0xFEE00000UL);
        a.mov(__dword_ptr[rbx + 0xF0], 0x1FF);        // LAPIC SVR: enable
        a.mov(rcx, 0xFEC00000UL);
        a.mov(__dword_ptr[rcx], 0x10 + 2 * pin + 1);  // redirection entry, high half: destination 0
        a.mov(__dword_ptr[rcx + 0x10], 0);
        a.mov(__dword_ptr[rcx], 0x10 + 2 * pin);      // low half: the vector, fixed, edge, unmasked
        a.mov(__dword_ptr[rcx + 0x10], vector);
    }

    /// <summary>
    /// A 64-bit handler at <paramref name="origin"/> for COM1's THR-empty interrupt delivered through the LAPIC: it
    /// reads IIR (which clears that interrupt), counts in the dword at <paramref name="counter"/>, EOIs the LAPIC
    /// and returns.
    /// </summary>
    public static byte[] UartThreIsr64(ulong origin, ulong counter) => Assemble(64, origin, a =>
    {
        a.push(rax);
        a.push(rdx);
        a.mov(dx, Com1 + 2);
        a.@in(al, dx);
        a.inc(__dword_ptr[counter]);
        a.mov(rax, 0xFEE00000UL);
        a.mov(__dword_ptr[rax + 0xB0], 0);
        a.pop(rdx);
        a.pop(rax);
        a.iretq();
    });

    /// <summary>An ELF64 whose one segment at <paramref name="address"/> prints the text in long mode.</summary>
    public static byte[] HelloElf64(string text, ulong address = 0x200000)
    {
        var code = Hello(64, address, text);
        return Elf64(address, new ElfSegmentSpec(address, address, code, (ulong)code.Length));
    }

    public static string WriteTemp(byte[] image, string suffix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"actorvisor-test-{Guid.NewGuid():N}{suffix}");
        File.WriteAllBytes(path, image);
        return path;
    }

    private static void U16(byte[] b, int o, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(o), v);
    private static void U32(byte[] b, int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(o), v);
    private static void U64(byte[] b, int o, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(o), v);
}
