using System.Runtime.CompilerServices;

namespace Actorvisor.Kernel.Cpu.Jit;

/// <summary>
/// What compiled blocks call. Their memory accesses take the software TLB's hit path in their own IL (see
/// <c>BlockCompiler.EmitHostPointer</c>) and call "slow" here (the interpreter's full path, which may fault or
/// reach MMIO) only on a miss, so generated code keeps guest registers in locals on the fast path and syncs
/// them only before the slow one.
/// </summary>
internal static unsafe class JitRuntime
{
    // Not inlined: the interpreter's path inlines the TLB lookup, segment checks and more, and taking all that
    // into every access site made the .NET JIT's work for a block about half again as large. The instruction's
    // address and the count of the block's instructions before it come as arguments rather than as stores in
    // the generated code, which is smaller for it.
    /// <summary>
    /// The interpreter's read (segment checks, page walk, MMIO), for the instruction at <paramref name="ip"/> of
    /// <paramref name="length"/> bytes with <paramref name="pending"/> instructions of the block run before it and
    /// not yet counted: state as the interpreter has it while a fault is possible, the count given back after.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static ulong ReadSlow(SoftwareCpu cpu, int seg, ulong offset, int size, ulong ip, int length, int pending)
    {
        Enter(cpu, ip, length, pending);
        var v = cpu.ReadMem(seg, offset, size);
        cpu.InstructionCount -= pending;
        return v;
    }

    /// <summary>The interpreter's write, as <see cref="ReadSlow"/>; may set <see cref="SoftwareCpu.EndBlock"/> (a write to code).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void WriteSlow(SoftwareCpu cpu, int seg, ulong offset, int size, ulong value, ulong ip, int length, int pending)
    {
        Enter(cpu, ip, length, pending);
        cpu.WriteMem(seg, offset, size, value);
        cpu.InstructionCount -= pending;
    }

    /// <summary>CurrentIp, RIP and the count as <c>ExecuteBlock</c> has them while the instruction at <paramref name="ip"/> runs.</summary>
    private static void Enter(SoftwareCpu cpu, ulong ip, int length, int pending)
    {
        cpu.CurrentIp = ip;
        cpu.Rip = ip + (ulong)length;
        cpu.InstructionCount += pending;
    }

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
