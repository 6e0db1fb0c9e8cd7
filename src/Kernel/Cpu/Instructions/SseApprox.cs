using System.Runtime.Intrinsics;
using Iced.Intel;
using static Actorvisor.Kernel.Cpu.Instructions.Simd;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// RCPPS/RCPSS/RSQRTPS/RSQRTSS. The SDM guarantees only a relative error of at most 1.5×2^-12, and Intel
/// and AMD use different tables, so no implementation matches every host bit for bit. Ours returns the
/// correctly rounded single of the exact value (far inside the bound, the same on every host), with the
/// architectural special cases exact: denormal inputs count as zero of their sign, ±0 → ±∞, ±∞ → ±0,
/// results below the normal range flush to zero, a negative RSQRT operand gives the default NaN, NaNs
/// are quieted. No MXCSR flags are set.
/// </summary>
internal static unsafe class SseApprox
{
    public static void Register(Dispatch.HandlerTable t)
    {
        Set(t, Mnemonic.Rcpps, &Rcpps); Set(t, Mnemonic.Rcpss, &Rcpss);
        Set(t, Mnemonic.Rsqrtps, &Rsqrtps); Set(t, Mnemonic.Rsqrtss, &Rsqrtss);
    }

    internal static uint Reciprocal(uint x, bool sqrt)
    {
        var neg = (x & 0x8000_0000) != 0;
        var exp = (x >> 23) & 0xFF;
        var frac = x & 0x7F_FFFF;
        var sign = neg ? 0x8000_0000u : 0;
        if (exp == 0xFF && frac != 0) return x | 0x40_0000;
        if (exp == 0) return sign | 0x7F80_0000; // ±0 and denormals: ±∞ (RSQRT(-0) = -∞ too)
        if (neg && sqrt) return 0xFFC0_0000;
        if (exp == 0xFF) return sign;
        var v = (double)BitConverter.UInt32BitsToSingle(x & 0x7FFF_FFFF);
        var r = (float)(sqrt ? 1.0 / Math.Sqrt(v) : 1.0 / v);
        var bits = BitConverter.SingleToUInt32Bits(r);
        if ((bits >> 23) == 0) bits = 0; // tiny results flush to zero
        return sign | bits;
    }

    private static void Run(SoftwareCpu c, in Instruction i, bool sqrt, bool scalar)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsUInt32();
        var a = Read(c, in i, 0).AsUInt32();
        var r = scalar ? a : s;
        for (var k = 0; k < (scalar ? 1 : 4); k++) r = r.WithElement(k, Reciprocal(s.GetElement(k), sqrt));
        Write(c, in i, 0, r.AsByte());
    }

    private static void Rcpps(SoftwareCpu c, in Instruction i) => Run(c, in i, false, false);
    private static void Rcpss(SoftwareCpu c, in Instruction i) => Run(c, in i, false, true);
    private static void Rsqrtps(SoftwareCpu c, in Instruction i) => Run(c, in i, true, false);
    private static void Rsqrtss(SoftwareCpu c, in Instruction i) => Run(c, in i, true, true);
}
