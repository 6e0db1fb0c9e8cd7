using System.Runtime.CompilerServices;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// Generic operand access for handlers: registers, memory (effective address → segment → linear) and
/// immediates, by Iced operand kind. Handlers that care for speed can specialise by <see cref="Code"/>.
/// </summary>
public sealed partial class SoftwareCpu
{
    /// <summary>Segment index of an Iced segment register (ES..GS).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int SegIndex(Register r) => r - Register.ES;

    /// <summary>Address size in bytes of an instruction's memory operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int AddressSize(in Instruction i)
    {
        // Iced names the base or index register in the address size; RIP/EIP are 8 and 4 bytes as well.
        var b = i.MemoryBase;
        if (b != Register.None) return OperandTables.RegisterBytes[(int)b];
        var x = i.MemoryIndex;
        if (x != Register.None) return OperandTables.RegisterBytes[(int)x];
        var d = i.MemoryDisplSize;
        if (d >= 2) return d;
        return Bitness == 64 ? 8 : Bitness == 32 ? 4 : 2;
    }

    /// <summary>The effective address (offset within the segment) of the memory operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong EffectiveAddress(in Instruction i)
    {
        var b = i.MemoryBase;
        if (b == Register.RIP) return i.IPRelativeMemoryAddress;
        if (b == Register.EIP) return (uint)i.IPRelativeMemoryAddress;
        // Sum the whole 64-bit registers and truncate once to the address size: the same result modulo
        // 2^size as summing the 16- or 32-bit registers Iced names, without a width switch per register.
        ulong ea = i.MemoryDisplacement64;
        if (b != Register.None) ea += GprRef(RegTable.Info[(int)b].Index);
        var x = i.MemoryIndex;
        if (x != Register.None) ea += GprRef(RegTable.Info[(int)x].Index) * (ulong)i.MemoryIndexScale;
        var size = AddressSize(in i);
        return size == 8 ? ea : size == 4 ? (uint)ea : (ushort)ea;
    }

    /// <summary>Linear address of the memory operand, checked for an access of <paramref name="size"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong MemoryLinear(in Instruction i, int size, AccessKind kind)
    {
        if (Bitness == 64)
        {
            // Only an FS or GS prefix adds a base in 64-bit mode, and the prefix is a field of the instruction, while
            // Iced computes MemorySegment (the default DS or SS) on every call: 1.4% of a Linux boot's vCPU time. The
            // segment matters otherwise only for which fault a non-canonical address raises (#SS or #GP), left to
            // SegmentedAddress.
            var ea = EffectiveAddress(in i);
            var prefix = i.SegmentPrefix;
            var la = prefix is Register.FS or Register.GS ? ea + Segs[SegIndex(prefix)].Base : ea;
            if (IsCanonical(la)) return la;
            return SegmentedAddress(SegIndex(i.MemorySegment), ea, size, kind);
        }
        return SegmentedAddress(SegIndex(i.MemorySegment), EffectiveAddress(in i), size, kind);
    }

    /// <summary>Operand kind of operand <paramref name="op"/>; folds to a field read for a constant 0 or 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static OpKind KindOf(in Instruction i, int op) =>
        op == 0 ? i.Op0Kind : op == 1 ? i.Op1Kind : i.GetOpKind(op);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Register RegisterOf(in Instruction i, int op) =>
        op == 0 ? i.Op0Register : op == 1 ? i.Op1Register : i.GetOpRegister(op);

    /// <summary>Size in bytes of operand <paramref name="op"/> (register, memory or immediate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int OperandSize(in Instruction i, int op)
    {
        var k = KindOf(in i, op);
        if (k == OpKind.Register) return OperandTables.RegisterBytes[(int)RegisterOf(in i, op)];
        if (k == OpKind.Memory) return OperandTables.MemoryBytes[(int)i.MemorySize];
        return OperandTables.ImmediateBytes(k);
    }

    /// <summary>Size in bytes of the memory operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int MemoryOperandSize(in Instruction i) => OperandTables.MemoryBytes[(int)i.MemorySize];

    /// <summary>Reads operand <paramref name="op"/>: a GPR, a memory operand or an immediate (sign-extended as encoded).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong ReadOperand(in Instruction i, int op)
    {
        var k = KindOf(in i, op);
        if (k == OpKind.Register) return ReadGpr(RegisterOf(in i, op));
        if (k == OpKind.Memory) return ReadMemoryOperand(in i);
        return ImmediateOperand(in i, k);
    }

    internal ulong ReadMemoryOperand(in Instruction i)
    {
        var size = MemoryOperandSize(in i);
        return ReadLinear(MemoryLinear(in i, size, AccessKind.Read), size);
    }

    private static ulong ImmediateOperand(in Instruction i, OpKind k)
    {
        switch (k)
        {
            case OpKind.Immediate8: return i.Immediate8;
            case OpKind.Immediate8_2nd: return i.Immediate8_2nd;
            case OpKind.Immediate16: return i.Immediate16;
            case OpKind.Immediate32: return i.Immediate32;
            case OpKind.Immediate64: return i.Immediate64;
            case OpKind.Immediate8to16: return (ushort)i.Immediate8to16;
            case OpKind.Immediate8to32: return (uint)i.Immediate8to32;
            case OpKind.Immediate8to64: return (ulong)i.Immediate8to64;
            case OpKind.Immediate32to64: return (ulong)i.Immediate32to64;
            default:
                throw new InvalidOperationException($"operand kind {k} of {i.Code} is not a value");
        }
    }

    /// <summary>Writes operand <paramref name="op"/> (a GPR with x86-64 zero-extension rules, or memory).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void WriteOperand(in Instruction i, int op, ulong value)
    {
        if (KindOf(in i, op) == OpKind.Register)
        {
            WriteGpr(RegisterOf(in i, op), value);
            return;
        }
        WriteMemoryOperand(in i, value);
    }

    internal void WriteMemoryOperand(in Instruction i, ulong value)
    {
        var size = MemoryOperandSize(in i);
        WriteLinear(MemoryLinear(in i, size, AccessKind.Write), size, value);
    }

    /// <summary>
    /// Read-modify-write of operand 0. For memory the linear address is computed once and checked for
    /// writing before the read, so a read-only destination faults without side effects.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong ReadForUpdate(in Instruction i, out ulong linear)
    {
        if (i.Op0Kind == OpKind.Register)
        {
            linear = ulong.MaxValue;
            return ReadGpr(i.Op0Register);
        }
        return ReadMemoryForUpdate(in i, out linear);
    }

    private ulong ReadMemoryForUpdate(in Instruction i, out ulong linear)
    {
        var size = MemoryOperandSize(in i);
        linear = MemoryLinear(in i, size, AccessKind.Write);
        return ReadLinear(linear, size);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CompleteUpdate(in Instruction i, ulong linear, ulong value)
    {
        if (i.Op0Kind == OpKind.Register) WriteGpr(i.Op0Register, value);
        else WriteLinear(linear, MemoryOperandSize(in i), value);
    }

    /// <summary>Stack-pointer width in bytes: 8 in 64-bit mode, else SS.B.</summary>
    internal int StackAddressSize
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        get => Bitness == 64 ? 8 : Segs[Seg.SS].Big ? 4 : 2;
    }
}

/// <summary>
/// Byte sizes by Iced register and memory-size value, as flat arrays: Iced's own GetSize() goes through an
/// info object per call, which showed up in profiles of the operand helpers.
/// </summary>
internal static class OperandTables
{
    public static readonly byte[] RegisterBytes = BuildRegisters();
    public static readonly ushort[] MemoryBytes = BuildMemory();

    private static byte[] BuildRegisters()
    {
        var all = Enum.GetValues<Register>();
        var t = new byte[all.Max(r => (int)r) + 1];
        foreach (var r in all) t[(int)r] = (byte)r.GetSize();
        return t;
    }

    private static ushort[] BuildMemory()
    {
        var all = Enum.GetValues<MemorySize>();
        var t = new ushort[all.Max(m => (int)m) + 1];
        foreach (var m in all) t[(int)m] = (ushort)m.GetSize();
        return t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ImmediateBytes(OpKind k) => k switch
    {
        OpKind.Immediate8 or OpKind.Immediate8_2nd => 1,
        OpKind.Immediate16 or OpKind.Immediate8to16 => 2,
        OpKind.Immediate32 or OpKind.Immediate8to32 => 4,
        _ => 8,
    };
}
