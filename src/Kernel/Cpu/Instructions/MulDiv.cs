using Iced.Intel;
using Reg = Iced.Intel.Register;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Multiply and divide (SDM Vol. 2A/2B, MUL, IMUL, DIV, IDIV).
/// MUL/IMUL: CF = OF = the product does not fit the destination (MUL: the upper half is not zero; IMUL:
/// the product is not the sign extension of its lower half). SF, ZF, AF, PF are undefined; we leave them
/// unchanged, as the host (AMD Zen) does.
/// DIV/IDIV: #DE for a zero divisor or a quotient that does not fit (before anything changes); all six
/// flags are undefined: we produce what the host (AMD Zen) does, CF and OF kept, AF set, SF, ZF, PF clear.
/// </summary>
internal static unsafe partial class MulDiv
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Mul, &Mul);
        t.Set(Mnemonic.Imul, &Imul);
        t.Set(Mnemonic.Div, &Div);
        t.Set(Mnemonic.Idiv, &Idiv);
    }

    /// <summary>MUL/IMUL: CF = OF = <paramref name="overflow"/>; SF, ZF, AF and PF stay as they were (undefined in the SDM; kept, as the host CPU keeps them).</summary>
    internal static void SetMulFlags(SoftwareCpu cpu, bool overflow) => cpu.SetCarryOverflow(overflow, overflow);

    /// <summary>MUL r/m: AX ← AL × src; DX:AX, EDX:EAX, RDX:RAX ← accumulator × src (unsigned).</summary>
    private static void Mul(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var s = cpu.ReadOperand(in i, 0);
        var g = cpu.Gprs;
        ulong lo, hi;
        switch (size)
        {
            case 1:
                var p8 = (g[Gpr.RAX] & 0xFF) * s;
                cpu.WriteGpr(Reg.AX, p8);
                lo = p8 & 0xFF; hi = p8 >> 8;
                break;
            case 2:
                var p16 = (g[Gpr.RAX] & 0xFFFF) * s;
                cpu.WriteGpr(Reg.AX, p16);
                cpu.WriteGpr(Reg.DX, p16 >> 16);
                lo = p16 & 0xFFFF; hi = p16 >> 16;
                break;
            case 4:
                var p32 = (g[Gpr.RAX] & 0xFFFF_FFFF) * s;
                lo = (uint)p32; hi = p32 >> 32;
                g[Gpr.RAX] = lo;
                g[Gpr.RDX] = hi;
                break;
            default:
                hi = Math.BigMul(g[Gpr.RAX], s, out lo);
                g[Gpr.RAX] = lo;
                g[Gpr.RDX] = hi;
                break;
        }
        SetMulFlags(cpu, hi != 0);
    }

    /// <summary>IMUL in its three forms: r/m (into the accumulator pair), r ← r × r/m, r ← r/m × imm.</summary>
    private static void Imul(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        if (i.OpCount == 1)
        {
            ImulAccumulator(cpu, in i, size);
            return;
        }
        long a, b;
        if (i.OpCount == 2)
        {
            a = SoftwareCpu.SignExtend(cpu.ReadGpr(i.Op0Register), size);
            b = SoftwareCpu.SignExtend(cpu.ReadOperand(in i, 1), size);
        }
        else
        {
            a = SoftwareCpu.SignExtend(cpu.ReadOperand(in i, 1), size);
            b = SoftwareCpu.SignExtend(cpu.ReadOperand(in i, 2), size);
        }
        var (low, overflow) = SignedProduct(a, b, size);
        cpu.WriteGpr(i.Op0Register, low);
        SetMulFlags(cpu, overflow);
    }

    /// <summary>The product truncated to the operand size, and whether truncation changed its value.</summary>
    private static (ulong Low, bool Overflow) SignedProduct(long a, long b, int size)
    {
        if (size == 8)
        {
            var hi = Math.BigMul(a, b, out var lo);
            return ((ulong)lo, hi != (lo >> 63));
        }
        var p = a * b; // |a|,|b| < 2^31: exact in 64 bits
        var low = (ulong)p & SoftwareCpu.SizeMask(size);
        return (low, SoftwareCpu.SignExtend(low, size) != p);
    }

    private static void ImulAccumulator(SoftwareCpu cpu, in Instruction i, int size)
    {
        var s = SoftwareCpu.SignExtend(cpu.ReadOperand(in i, 0), size);
        var g = cpu.Gprs;
        var a = SoftwareCpu.SignExtend(g[Gpr.RAX], size);
        ulong low;
        bool overflow;
        switch (size)
        {
            case 1:
                var p8 = a * s;
                cpu.WriteGpr(Reg.AX, (ulong)p8);
                low = (ulong)p8 & 0xFF;
                overflow = (sbyte)p8 != p8;
                break;
            case 2:
                var p16 = a * s;
                cpu.WriteGpr(Reg.AX, (ulong)p16);
                cpu.WriteGpr(Reg.DX, (ulong)(p16 >> 16));
                low = (ulong)p16 & 0xFFFF;
                overflow = (short)p16 != p16;
                break;
            case 4:
                var p32 = a * s;
                g[Gpr.RAX] = (uint)p32;
                g[Gpr.RDX] = (uint)(p32 >> 32);
                low = (uint)p32;
                overflow = (int)p32 != p32;
                break;
            default:
                var hi = Math.BigMul(a, s, out var lo);
                g[Gpr.RAX] = (ulong)lo;
                g[Gpr.RDX] = (ulong)hi;
                low = (ulong)lo;
                overflow = hi != (lo >> 63);
                break;
        }
        SetMulFlags(cpu, overflow);
    }

    /// <summary>
    /// DIV r/m: the accumulator pair (AX, DX:AX, EDX:EAX, RDX:RAX) divided by src, unsigned; quotient to
    /// AL/AX/EAX/RAX, remainder to AH/DX/EDX/RDX. #DE before any change if src is 0 or the quotient overflows.
    /// </summary>
    private static void Div(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var s = cpu.ReadOperand(in i, 0);
        if (s == 0) throw CpuFault.DivideError();
        var g = cpu.Gprs;
        var dividend = Dividend(g, size);
        var q = dividend / s;
        var rem = (ulong)(dividend % s);
        if (q > SoftwareCpu.SizeMask(size)) throw CpuFault.DivideError();
        WriteQuotientRemainder(cpu, size, (ulong)q, rem);
        SetDivFlags(cpu);
    }

    /// <summary>IDIV r/m: signed; the quotient truncates toward zero and the remainder takes the dividend's sign.</summary>
    private static void Idiv(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var s = SoftwareCpu.SignExtend(cpu.ReadOperand(in i, 0), size);
        if (s == 0) throw CpuFault.DivideError();
        var g = cpu.Gprs;
        var bits = size * 8;
        // The dividend is 2×size bits wide: sign-extend it from there to 128 bits.
        var raw = Dividend(g, size);
        var dividend = bits == 64 ? (Int128)raw : (Int128)(raw << (128 - 2 * bits)) >> (128 - 2 * bits);
        // Work on magnitudes so that no .NET overflow can occur (e.g. -2^127 / -1).
        var negDividend = dividend < 0;
        var magD = negDividend ? (UInt128)(-(dividend + 1)) + 1 : (UInt128)dividend;
        var magS = s < 0 ? (ulong)(-(s + 1)) + 1 : (ulong)s;
        var magQ = magD / magS;
        var magR = (ulong)(magD % magS);
        var negQ = negDividend != (s < 0);
        // The quotient must fit the signed operand size: [-2^(bits-1), 2^(bits-1) - 1].
        var limit = (UInt128)1 << (bits - 1);
        if (negQ ? magQ > limit : magQ >= limit) throw CpuFault.DivideError();
        var q = negQ ? (ulong)(0 - magQ) : (ulong)magQ;
        var rem = negDividend ? 0 - magR : magR;
        WriteQuotientRemainder(cpu, size, q & SoftwareCpu.SizeMask(size), rem & SoftwareCpu.SizeMask(size));
        SetDivFlags(cpu);
    }

    private static void SetDivFlags(SoftwareCpu cpu) =>
        cpu.SetArithFlags((cpu.ComputeArith() & (RFlags.CF | RFlags.OF)) | RFlags.AF);

    private static UInt128 Dividend(ulong[] g, int size) => size switch
    {
        1 => g[Gpr.RAX] & 0xFFFF,
        2 => ((g[Gpr.RDX] & 0xFFFF) << 16) | (g[Gpr.RAX] & 0xFFFF),
        4 => ((g[Gpr.RDX] & 0xFFFF_FFFF) << 32) | (g[Gpr.RAX] & 0xFFFF_FFFF),
        _ => ((UInt128)g[Gpr.RDX] << 64) | g[Gpr.RAX],
    };

    private static void WriteQuotientRemainder(SoftwareCpu cpu, int size, ulong q, ulong r)
    {
        switch (size)
        {
            case 1:
                cpu.WriteGpr(Reg.AX, (r << 8) | (q & 0xFF));
                break;
            case 2:
                cpu.WriteGpr(Reg.AX, q);
                cpu.WriteGpr(Reg.DX, r);
                break;
            case 4:
                cpu.WriteGpr(Reg.EAX, q);
                cpu.WriteGpr(Reg.EDX, r);
                break;
            default:
                cpu.Gprs[Gpr.RAX] = q;
                cpu.Gprs[Gpr.RDX] = r;
                break;
        }
    }
}
