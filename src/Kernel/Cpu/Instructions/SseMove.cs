using System.Runtime.Intrinsics;
using Iced.Intel;
using static Actorvisor.Kernel.Cpu.Instructions.Simd;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>MMX/SSE/SSE2 data movement: full-width, scalar, half and masked moves, MOVD/MOVQ, MOVMSK.</summary>
internal static unsafe class SseMove
{
    public static void Register(Dispatch.HandlerTable t)
    {
        foreach (var m in new[] { Mnemonic.Movaps, Mnemonic.Movups, Mnemonic.Movapd, Mnemonic.Movupd, Mnemonic.Movdqa,
                     Mnemonic.Movdqu, Mnemonic.Movntdq, Mnemonic.Movntps, Mnemonic.Movntpd, Mnemonic.Movntq })
            Set(t, m, &Move);
        foreach (var m in new[] { Mnemonic.Movd, Mnemonic.Movq, Mnemonic.Movq2dq, Mnemonic.Movdq2q })
            Set(t, m, &MoveZeroExtend);
        Set(t, Mnemonic.Movss, &MoveScalar);
        Set(t, Mnemonic.Movsd, &MoveScalar); // by code: the string MOVSD keeps its own handler
        Set(t, Mnemonic.Movlps, &MoveLow);
        Set(t, Mnemonic.Movlpd, &MoveLow);
        Set(t, Mnemonic.Movhps, &MoveHigh);
        Set(t, Mnemonic.Movhpd, &MoveHigh);
        Set(t, Mnemonic.Movhlps, &Movhlps);
        Set(t, Mnemonic.Movlhps, &Movlhps);
        Set(t, Mnemonic.Maskmovdqu, &MaskMove);
        Set(t, Mnemonic.Maskmovq, &MaskMove);
        Set(t, Mnemonic.Pmovmskb, &Pmovmskb);
        Set(t, Mnemonic.Movmskps, &Movmskps);
        Set(t, Mnemonic.Movmskpd, &Movmskpd);
    }

    private static void Move(SoftwareCpu cpu, in Instruction i)
    {
        Enter(cpu, in i);
        Write(cpu, in i, 0, Read(cpu, in i, 1));
    }

    /// <summary>MOVD/MOVQ (and MOVQ2DQ/MOVDQ2Q): the low 32 or 64 bits, zero-extended into the destination.</summary>
    private static void MoveZeroExtend(SoftwareCpu cpu, in Instruction i)
    {
        Enter(cpu, in i);
        var v = Low64(Read(cpu, in i, 1));
        if (i.Mnemonic == Mnemonic.Movd) v = (v.AsUInt64() & Vector128.Create(0xFFFF_FFFFUL, 0UL)).AsByte();
        Write(cpu, in i, 0, v);
    }

    /// <summary>MOVSS/MOVSD: register to register merges the low element; a load zeroes the rest; a store writes the element.</summary>
    private static void MoveScalar(SoftwareCpu cpu, in Instruction i)
    {
        Enter(cpu, in i);
        var src = Read(cpu, in i, 1);
        if (i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register)
        {
            var mask = i.Mnemonic == Mnemonic.Movss ? Vector128.Create(0xFFFF_FFFFUL, 0UL) : Vector128.Create(ulong.MaxValue, 0UL);
            var dst = Read(cpu, in i, 0).AsUInt64();
            src = ((dst & ~mask) | (src.AsUInt64() & mask)).AsByte();
        }
        Write(cpu, in i, 0, src);
    }

    /// <summary>MOVLPS/MOVLPD: m64 to the low half (high half kept), or the low half to m64.</summary>
    private static void MoveLow(SoftwareCpu cpu, in Instruction i)
    {
        Enter(cpu, in i);
        var src = Read(cpu, in i, 1).AsUInt64();
        if (i.Op0Kind == OpKind.Register)
        {
            var dst = Read(cpu, in i, 0).AsUInt64();
            Write(cpu, in i, 0, dst.WithElement(0, src.GetElement(0)).AsByte());
        }
        else Write(cpu, in i, 0, src.AsByte());
    }

    /// <summary>MOVHPS/MOVHPD: m64 to the high half (low kept), or the high half to m64.</summary>
    private static void MoveHigh(SoftwareCpu cpu, in Instruction i)
    {
        Enter(cpu, in i);
        var src = Read(cpu, in i, 1).AsUInt64();
        if (i.Op0Kind == OpKind.Register)
        {
            var dst = Read(cpu, in i, 0).AsUInt64();
            Write(cpu, in i, 0, dst.WithElement(1, src.GetElement(0)).AsByte());
        }
        else Write(cpu, in i, 0, Vector128.Create(src.GetElement(1), 0UL).AsByte());
    }

    private static void Movhlps(SoftwareCpu cpu, in Instruction i) =>
        Binary(cpu, in i, static (a, b) => a.AsUInt64().WithElement(0, b.AsUInt64().GetElement(1)).AsByte());

    private static void Movlhps(SoftwareCpu cpu, in Instruction i) =>
        Binary(cpu, in i, static (a, b) => a.AsUInt64().WithElement(1, b.AsUInt64().GetElement(0)).AsByte());

    /// <summary>
    /// MASKMOVDQU/MASKMOVQ: stores the bytes of operand 1 whose mask byte (operand 2) has bit 7 set to
    /// DS:rDI (segment overridable). All target pages are checked before the first byte is written.
    /// </summary>
    private static void MaskMove(SoftwareCpu cpu, in Instruction i)
    {
        Enter(cpu, in i);
        var data = Read(cpu, in i, 1);
        var mask = Read(cpu, in i, 2);
        var n = i.Mnemonic == Mnemonic.Maskmovq ? 8 : 16;
        var rdi = i.Op0Kind switch
        {
            OpKind.MemorySegDI => cpu.Gprs[Gpr.RDI] & 0xFFFF,
            OpKind.MemorySegEDI => cpu.Gprs[Gpr.RDI] & 0xFFFF_FFFF,
            _ => cpu.Gprs[Gpr.RDI],
        };
        var bits = mask.ExtractMostSignificantBits() & ((1u << n) - 1);
        if (bits == 0) return;
        var la = cpu.SegmentedAddress(SoftwareCpu.SegIndex(i.MemorySegment), rdi, n, AccessKind.Write);
        cpu.ProbeWrite(la, n);
        for (var k = 0; k < n; k++)
            if ((bits & (1u << k)) != 0) cpu.WriteLinear(la + (ulong)k, 1, data.GetElement(k));
    }

    private static void Pmovmskb(SoftwareCpu cpu, in Instruction i)
    {
        Enter(cpu, in i);
        var v = Read(cpu, in i, 1);
        var bits = v.ExtractMostSignificantBits();
        if (IsMm(i.Op1Register)) bits &= 0xFF;
        cpu.WriteGpr(i.Op0Register, bits);
    }

    private static void Movmskps(SoftwareCpu cpu, in Instruction i)
    {
        Enter(cpu, in i);
        cpu.WriteGpr(i.Op0Register, Read(cpu, in i, 1).AsUInt32().ExtractMostSignificantBits());
    }

    private static void Movmskpd(SoftwareCpu cpu, in Instruction i)
    {
        Enter(cpu, in i);
        cpu.WriteGpr(i.Op0Register, Read(cpu, in i, 1).AsUInt64().ExtractMostSignificantBits());
    }
}
