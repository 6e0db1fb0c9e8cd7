using System.Runtime.CompilerServices;

namespace Actorvisor.Kernel.Cpu.Jit;

/// <summary>
/// What compiled blocks call: the software-TLB fast paths of <see cref="SoftwareCpu.ReadLinear"/> and
/// <see cref="SoftwareCpu.WriteLinear"/> split into a host pointer (null on a miss; never faults, never
/// leaves RAM) and "slow" (the interpreter's full path, which may fault or reach MMIO), so generated code
/// can keep guest registers in locals on the fast path and sync them only before the slow one.
/// </summary>
internal static unsafe class JitRuntime
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte* ReadPointer(SoftwareCpu cpu, ulong la, int size)
    {
        if ((la & 0xFFF) > (ulong)(0x1000 - size)) return null;
        ref var e = ref cpu.TlbR[(int)(la >> 12) & SoftwareCpu.TlbMask];
        if (e.Tag != (la & ~0xFFFUL) || e.Host == 0) return null;
        return (byte*)e.Host + (la & 0xFFF);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte* WritePointer(SoftwareCpu cpu, ulong la, int size)
    {
        if ((la & 0xFFF) > (ulong)(0x1000 - size)) return null;
        ref var e = ref cpu.TlbW[(int)(la >> 12) & SoftwareCpu.TlbMask];
        // A write to a page holding decoded code goes the slow way, which invalidates the page's blocks.
        if (e.Tag != (la & ~0xFFFUL) || e.Host == 0 || cpu.Memory.IsCodePage(e.PhysPage >> 12)) return null;
        return (byte*)e.Host + (la & 0xFFF);
    }

    /// <summary>The interpreter's read: segment checks, page walk, MMIO; faults as the instruction would.</summary>
    public static ulong ReadSlow(SoftwareCpu cpu, int seg, ulong offset, int size) => cpu.ReadMem(seg, offset, size);

    /// <summary>The interpreter's write; may set <see cref="SoftwareCpu.EndBlock"/> (a write to code).</summary>
    public static void WriteSlow(SoftwareCpu cpu, int seg, ulong offset, int size, ulong value) =>
        cpu.WriteMem(seg, offset, size, value);

    /// <summary>FS or GS base (the only segment bases that apply in 64-bit mode).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SegmentBase(SoftwareCpu cpu, int seg) => cpu.Segs[seg].Base;

    /// <summary>High half of a signed 64×64 product (IMUL's overflow test).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Multiply64(long a, long b, out ulong low)
    {
        var hi = Math.BigMul(a, b, out var lo);
        low = (ulong)lo;
        return hi != (lo >> 63);
    }

    /// <summary>A RET to a non-canonical address faults on the RET (SDM Vol. 2B, RET).</summary>
    public static void ThrowGeneral() => throw CpuFault.General(0);
}
