using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Bench;

/// <summary>Compute-heavy guest programs (64-bit), each ending in HLT after a fixed amount of work.</summary>
internal static class GuestLoops
{
    public const ulong Load = 0x100000;
    public const ulong Data = 0x200000;

    /// <summary>A byte-wise Adler-32-like checksum over a 64 KiB buffer, repeated: loads, adds, compares, branches.</summary>
    public static void Checksum(Assembler a, int rounds)
    {
        var outer = a.CreateLabel();
        var inner = a.CreateLabel();
        a.mov(r8d, rounds);
        a.xor(eax, eax);
        a.mov(ebx, 1);
        a.Label(ref outer);
        a.mov(rsi, Data);
        a.mov(ecx, 65536);
        a.Label(ref inner);
        a.movzx(edx, __byte_ptr[rsi]);
        a.add(ebx, edx);
        a.add(eax, ebx);
        a.and(ebx, 0xFFFF);
        a.inc(rsi);
        a.dec(ecx);
        a.jnz(inner);
        a.dec(r8d);
        a.jnz(outer);
        a.hlt();
    }

    /// <summary>Insertion-sort passes over 512 qwords: memory reads and writes, signed compares.</summary>
    public static void Sort(Assembler a, int rounds)
    {
        var round = a.CreateLabel();
        var fill = a.CreateLabel();
        var outer = a.CreateLabel();
        var inner = a.CreateLabel();
        var place = a.CreateLabel();
        a.mov(r9d, rounds);
        a.Label(ref round);
        // Fill with a linear-congruential sequence so each round sorts fresh data.
        a.mov(rdi, Data);
        a.mov(ecx, 512);
        a.mov(rax, 12345);
        a.Label(ref fill);
        a.imul(rax, rax, 1103515245);
        a.add(rax, 12345);
        a.mov(__qword_ptr[rdi], rax);
        a.add(rdi, 8);
        a.dec(ecx);
        a.jnz(fill);
        a.mov(r8d, 1);
        a.Label(ref outer);
        a.mov(rdi, Data);
        a.mov(rax, __qword_ptr[rdi + r8 * 8]);
        a.mov(rcx, r8);
        a.Label(ref inner);
        a.mov(rdx, __qword_ptr[rdi + rcx * 8 - 8]);
        a.cmp(rdx, rax);
        a.jle(place);
        a.mov(__qword_ptr[rdi + rcx * 8], rdx);
        a.dec(rcx);
        a.jnz(inner);
        a.Label(ref place);
        a.mov(__qword_ptr[rdi + rcx * 8], rax);
        a.inc(r8);
        a.cmp(r8, 512);
        a.jb(outer);
        a.dec(r9d);
        a.jnz(round);
        a.hlt();
    }
}
