using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>A read-modify-write step for <see cref="LockedMemory"/>: maps the old value to the new one (may run more than once).</summary>
internal interface IRmw
{
    ulong Apply(ulong old);
}

/// <summary>
/// LOCKed read-modify-writes that are atomic against other vCPUs (other threads running other
/// <see cref="SoftwareCpu"/> instances on the same guest memory; SDM Vol. 3A, 9.1.2): a compare-exchange loop
/// on the host memory behind the guest address. 1- and 2-byte operands, and misaligned ones, use the host
/// CAS of their own width where it is aligned, else a CAS on the aligned 8-byte word that contains them.
/// Operands that cross a page or an 8-byte word on a host that cannot CAS them in place, and MMIO targets,
/// fall back to one process-wide lock (atomic against other fallback users only, as such accesses are on
/// real hardware a bus lock no guest should rely on for speed).
/// </summary>
internal static unsafe class LockedMemory
{
    private static readonly Lock Fallback = new();

    /// <summary>x86 hosts CAS a misaligned operand atomically as long as it stays within one cache line.</summary>
    private static readonly bool HostCasMisaligned = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86;

    /// <summary>Linear address of operand 0 (memory), checked for writing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Linear(SoftwareCpu cpu, in Instruction i, int size) => cpu.MemoryLinear(in i, size, AccessKind.Write);

    /// <summary>
    /// Atomically replaces the <paramref name="size"/>-byte value at linear <paramref name="la"/> with
    /// <c>op.Apply(old)</c>; returns the old value. Faults (#PF for a read-only or absent page) come before any change.
    /// </summary>
    public static ulong Update<T>(SoftwareCpu cpu, ulong la, int size, ref T op) where T : struct, IRmw
    {
        var p = HostPointer(cpu, la, size);
        if (p != null && TryUpdateInPlace(p, size, ref op, out var old)) return old;
        lock (Fallback)
        {
            old = cpu.ReadLinear(la, size);
            cpu.WriteLinear(la, size, op.Apply(old) & SoftwareCpu.SizeMask(size));
            return old;
        }
    }

    /// <summary>A host pointer for writing: the write TLB when it hits on a non-code page, else the full check.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static byte* HostPointer(SoftwareCpu cpu, ulong la, int size)
    {
        if ((la & 0xFFF) <= (ulong)(0x1000 - size))
        {
            ref var e = ref cpu.TlbW[(int)(la >> 12) & SoftwareCpu.TlbMask];
            if (e.Tag == (la & ~0xFFFUL) && e.Host != 0 && !cpu.Memory.IsCodePage(e.PhysPage >> 12))
                return (byte*)e.Host + (la & 0xFFF);
        }
        return cpu.HostPointerForWrite(la, size);
    }

    private static bool TryUpdateInPlace<T>(byte* p, int size, ref T op, out ulong old) where T : struct, IRmw
    {
        var addr = (ulong)p;
        if ((addr & (ulong)(size - 1)) == 0)
        {
            old = size switch
            {
                1 => Cas8(p, ref op),
                2 => Cas16(p, ref op),
                4 => Cas32(p, ref op),
                _ => Cas64(p, ref op),
            };
            return true;
        }
        var word = addr & ~7UL;
        if (addr + (ulong)size <= word + 8)
        {
            old = CasInWord((ulong*)word, (int)(addr - word) * 8, size, ref op);
            return true;
        }
        if (HostCasMisaligned && (addr & 63) + (ulong)size <= 64)
        {
            // Misaligned across an 8-byte boundary but inside a cache line: x86 locks it without a bus lock.
            old = size == 2 ? Cas16(p, ref op) : size == 4 ? Cas32(p, ref op) : Cas64(p, ref op);
            return true;
        }
        old = 0;
        return false;
    }

    private static ulong Cas8<T>(byte* p, ref T op) where T : struct, IRmw
    {
        ref var loc = ref *p;
        var old = Volatile.Read(ref loc);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref loc, (byte)op.Apply(old), old);
            if (seen == old) return old;
            old = seen;
        }
    }

    private static ulong Cas16<T>(byte* p, ref T op) where T : struct, IRmw
    {
        ref var loc = ref *(ushort*)p;
        var old = Volatile.Read(ref loc);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref loc, (ushort)op.Apply(old), old);
            if (seen == old) return old;
            old = seen;
        }
    }

    private static ulong Cas32<T>(byte* p, ref T op) where T : struct, IRmw
    {
        ref var loc = ref *(uint*)p;
        var old = Volatile.Read(ref loc);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref loc, (uint)op.Apply(old), old);
            if (seen == old) return old;
            old = seen;
        }
    }

    private static ulong Cas64<T>(byte* p, ref T op) where T : struct, IRmw
    {
        ref var loc = ref *(ulong*)p;
        var old = Volatile.Read(ref loc);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref loc, op.Apply(old), old);
            if (seen == old) return old;
            old = seen;
        }
    }

    private static ulong CasInWord<T>(ulong* word, int shift, int size, ref T op) where T : struct, IRmw
    {
        var mask = SoftwareCpu.SizeMask(size);
        ref var loc = ref *word;
        var w = Volatile.Read(ref loc);
        while (true)
        {
            var old = (w >> shift) & mask;
            var n = (w & ~(mask << shift)) | ((op.Apply(old) & mask) << shift);
            var seen = Interlocked.CompareExchange(ref loc, n, w);
            if (seen == w) return old;
            w = seen;
        }
    }

    // ---- 16-byte compare-exchange (CMPXCHG16B) ----

    /// <summary>
    /// Atomically compares the 16 bytes at <paramref name="la"/> (16-byte aligned) with
    /// <paramref name="expected"/> and stores <paramref name="desired"/> if equal; returns the old value.
    /// Uses the host's CMPXCHG16B through a small generated thunk (.NET has no 128-bit Interlocked), or the
    /// fallback lock where there is none.
    /// </summary>
    public static UInt128 CompareExchange128(SoftwareCpu cpu, ulong la, UInt128 expected, UInt128 desired)
    {
        var p = HostPointer(cpu, la, 16);
        if (p != null && Cas128.Available)
        {
            var cmp = expected;
            Cas128.Invoke(p, &cmp, (ulong)desired, (ulong)(desired >> 64));
            return cmp;
        }
        lock (Fallback)
        {
            // Translate both halves for writing before anything changes.
            var lo = cpu.ReadLinear(la, 8);
            var hi = cpu.ReadLinear(la + 8, 8);
            var old = ((UInt128)hi << 64) | lo;
            var n = old == expected ? desired : old;
            cpu.WriteLinear(la, 8, (ulong)n);
            cpu.WriteLinear(la + 8, 8, (ulong)(n >> 64));
            return old;
        }
    }

    /// <summary>The host CMPXCHG16B thunk: (ptr, expected*, desiredLo, desiredHi); *expected receives the old value.</summary>
    private static class Cas128
    {
        public static readonly bool Available;
        private static readonly delegate* unmanaged<byte*, UInt128*, ulong, ulong, void> Thunk;

        public static void Invoke(byte* p, UInt128* expected, ulong lo, ulong hi) => Thunk(p, expected, lo, hi);

        static Cas128()
        {
            if (RuntimeInformation.ProcessArchitecture != Architecture.X64 || !OperatingSystem.IsLinux()) return;
            // CPUID.01H:ECX.CMPXCHG16B[bit 13]
            var (_, _, ecx, _) = X86Base.CpuId(1, 0);
            if ((ecx & (1 << 13)) == 0) return;
            var code = AssembleThunk();
            var mem = Memory.NativeMethods.mmap(0, 4096, Memory.NativeMethods.PROT_READ | Memory.NativeMethods.PROT_WRITE,
                Memory.NativeMethods.MAP_PRIVATE | Memory.NativeMethods.MAP_ANONYMOUS, -1, 0);
            if (mem == Memory.NativeMethods.MAP_FAILED) return;
            code.CopyTo(new Span<byte>((void*)mem, code.Length));
            if (Memory.NativeMethods.mprotect(mem, 4096, Memory.NativeMethods.PROT_READ | Memory.NativeMethods.PROT_EXEC) != 0) return;
            Thunk = (delegate* unmanaged<byte*, UInt128*, ulong, ulong, void>)mem;
            Available = true;
        }

        /// <summary>SysV: rdi = ptr, rsi = &amp;expected, rdx = desired lo, rcx = desired hi.</summary>
        private static byte[] AssembleThunk()
        {
            var list = new List<Instruction>
            {
                Instruction.Create(Code.Push_r64, Register.RBX),
                Instruction.Create(Code.Mov_r64_rm64, Register.RBX, Register.RDX),
                Instruction.Create(Code.Mov_r64_rm64, Register.RAX, new MemoryOperand(Register.RSI)),
                Instruction.Create(Code.Mov_r64_rm64, Register.RDX, new MemoryOperand(Register.RSI, 8, 1)),
                Instruction.Create(Code.Cmpxchg16b_m128, new MemoryOperand(Register.RDI)),
                Instruction.Create(Code.Mov_rm64_r64, new MemoryOperand(Register.RSI), Register.RAX),
                Instruction.Create(Code.Mov_rm64_r64, new MemoryOperand(Register.RSI, 8, 1), Register.RDX),
                Instruction.Create(Code.Pop_r64, Register.RBX),
                Instruction.Create(Code.Retnq),
            };
            list[4] = WithLock(list[4]);
            var writer = new BytesWriter();
            var block = new InstructionBlock(writer, list, 0);
            if (!BlockEncoder.TryEncode(64, block, out var error, out _)) throw new InvalidOperationException(error);
            return writer.Bytes.ToArray();
        }

        private static Instruction WithLock(Instruction i)
        {
            i.HasLockPrefix = true;
            return i;
        }

        private sealed class BytesWriter : CodeWriter
        {
            public readonly List<byte> Bytes = new();
            public override void WriteByte(byte value) => Bytes.Add(value);
        }
    }
}
