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
    internal int AddressSize(in Instruction i)
    {
        var b = i.MemoryBase;
        if (b != Register.None && b != Register.RIP && b != Register.EIP) return b.GetSize();
        if (b == Register.RIP) return 8;
        if (b == Register.EIP) return 4;
        var x = i.MemoryIndex;
        if (x != Register.None) return x.GetSize();
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
        ulong ea = i.MemoryDisplacement64;
        if (b != Register.None) ea += ReadGpr(b);
        var x = i.MemoryIndex;
        if (x != Register.None) ea += ReadGpr(x) * (ulong)i.MemoryIndexScale;
        var size = AddressSize(in i);
        return size == 8 ? ea : size == 4 ? (uint)ea : (ushort)ea;
    }

    /// <summary>Linear address of the memory operand, checked for an access of <paramref name="size"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong MemoryLinear(in Instruction i, int size, AccessKind kind) =>
        SegmentedAddress(SegIndex(i.MemorySegment), EffectiveAddress(in i), size, kind);

    /// <summary>Size in bytes of operand <paramref name="op"/> (register or memory).</summary>
    internal static int OperandSize(in Instruction i, int op)
    {
        var k = i.GetOpKind(op);
        if (k == OpKind.Register) return i.GetOpRegister(op).GetSize();
        if (k == OpKind.Memory) return i.MemorySize.GetSize();
        return k switch
        {
            OpKind.Immediate8 or OpKind.Immediate8_2nd => 1,
            OpKind.Immediate16 or OpKind.Immediate8to16 => 2,
            OpKind.Immediate32 or OpKind.Immediate8to32 => 4,
            _ => 8,
        };
    }

    /// <summary>Reads operand <paramref name="op"/>: a GPR, a memory operand or an immediate (sign-extended as encoded).</summary>
    internal ulong ReadOperand(in Instruction i, int op)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
                return ReadGpr(i.GetOpRegister(op));
            case OpKind.Memory:
                var size = i.MemorySize.GetSize();
                return ReadLinear(MemoryLinear(in i, size, AccessKind.Read), size);
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
                throw new InvalidOperationException($"operand kind {i.GetOpKind(op)} of {i.Code} is not a value");
        }
    }

    /// <summary>Writes operand <paramref name="op"/> (a GPR with x86-64 zero-extension rules, or memory).</summary>
    internal void WriteOperand(in Instruction i, int op, ulong value)
    {
        if (i.GetOpKind(op) == OpKind.Register)
        {
            WriteGpr(i.GetOpRegister(op), value);
            return;
        }
        var size = i.MemorySize.GetSize();
        WriteLinear(MemoryLinear(in i, size, AccessKind.Write), size, value);
    }

    /// <summary>
    /// Read-modify-write of operand 0. For memory the linear address is computed once and checked for
    /// writing before the read, so a read-only destination faults without side effects.
    /// </summary>
    internal ulong ReadForUpdate(in Instruction i, out ulong linear)
    {
        if (i.Op0Kind == OpKind.Register)
        {
            linear = ulong.MaxValue;
            return ReadGpr(i.Op0Register);
        }
        var size = i.MemorySize.GetSize();
        linear = MemoryLinear(in i, size, AccessKind.Write);
        return ReadLinear(linear, size);
    }

    internal void CompleteUpdate(in Instruction i, ulong linear, ulong value)
    {
        if (i.Op0Kind == OpKind.Register) WriteGpr(i.Op0Register, value);
        else WriteLinear(linear, i.MemorySize.GetSize(), value);
    }

    /// <summary>Stack-pointer width in bytes: 8 in 64-bit mode, else SS.B.</summary>
    internal int StackAddressSize => Bitness == 64 ? 8 : Segs[Seg.SS].Big ? 4 : 2;
}
