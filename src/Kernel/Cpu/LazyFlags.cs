using System.Numerics;
using System.Runtime.CompilerServices;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu;

/// <summary>Which operation last set the arithmetic flags (QEMU's lazy condition codes).</summary>
internal enum FlagOp : byte
{
    /// <summary>The arithmetic flags are materialised in <see cref="SoftwareCpu.FlagsArith"/>.</summary>
    None,
    Add, Adc, Sub, Sbb,
    /// <summary>AND/OR/XOR/TEST: CF = OF = 0, AF = 0 (undefined by the SDM).</summary>
    Logic,
    /// <summary>INC/DEC keep CF: it is materialised in FlagsArith at the time.</summary>
    Inc, Dec,
    /// <summary>
    /// SHL/SAL, SHR, SAR with a masked count of 1..63: LfDst = the operand before, LfSrc = the count,
    /// LfRes = the result. A count of 0 changes no flags and records nothing.
    /// </summary>
    Shl, Shr, Sar,
}

/// <summary>
/// Lazy arithmetic flags: an instruction records its operation, operands and result; a flag is computed
/// only when something reads it. Most flag results are overwritten before being read.
/// </summary>
public sealed partial class SoftwareCpu
{
    internal FlagOp LfOp;
    internal byte LfSize = 4;
    internal ulong LfDst, LfSrc, LfRes;
    /// <summary>Materialised arithmetic flags (valid when LfOp == None; CF for Inc/Dec; carry-in for Adc/Sbb).</summary>
    internal ulong FlagsArith;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetLazy(FlagOp op, int size, ulong dst, ulong src, ulong res)
    {
        LfOp = op; LfSize = (byte)size; LfDst = dst; LfSrc = src; LfRes = res;
    }

    /// <summary>For INC/DEC: CF survives from before.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetLazyIncDec(bool dec, int size, ulong dst, ulong res)
    {
        var cf = GetCF();
        FlagsArith = cf ? RFlags.CF : 0;
        LfOp = dec ? FlagOp.Dec : FlagOp.Inc; LfSize = (byte)size; LfDst = dst; LfSrc = 1; LfRes = res;
    }

    /// <summary>For ADC/SBB: the carry-in is kept in FlagsArith.CF.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetLazyCarry(bool sbb, int size, ulong dst, ulong src, ulong res, bool carryIn)
    {
        FlagsArith = carryIn ? RFlags.CF : 0;
        LfOp = sbb ? FlagOp.Sbb : FlagOp.Adc; LfSize = (byte)size; LfDst = dst; LfSrc = src; LfRes = res;
    }

    /// <summary>Sets the six arithmetic flags eagerly (shifts, multiplies, BCD, flag instructions).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetArithFlags(ulong flags)
    {
        FlagsArith = flags & RFlags.Arith;
        LfOp = FlagOp.None;
    }

    /// <summary>
    /// Replaces CF and OF, keeping SF, ZF, AF and PF as the flags before left them (rotates; MUL/IMUL, whose other
    /// flags the SDM leaves undefined and the host CPU keeps). Compiled code calls it where it materialises such flags.
    /// </summary>
    internal void SetCarryOverflow(bool cf, bool of)
    {
        var f = ComputeArith() & ~(RFlags.CF | RFlags.OF);
        if (cf) f |= RFlags.CF;
        if (of) f |= RFlags.OF;
        SetArithFlags(f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong SizeMask(int size) => size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong SignBit(int size) => 1UL << (size * 8 - 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static long SignExtend(ulong v, int size) => size switch
    {
        1 => (sbyte)v, 2 => (short)v, 4 => (int)v, _ => (long)v,
    };

    /// <summary>PF: set when the low byte of the result has an even number of one bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong ParityFlag(ulong res) => (BitOperations.PopCount(res & 0xFF) & 1) == 0 ? RFlags.PF : 0;

    /// <summary>ZF, SF and PF of a result of the given size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong ResultFlags(ulong res, int size)
    {
        res &= SizeMask(size);
        var f = ParityFlag(res);
        if (res == 0) f |= RFlags.ZF;
        if ((res & SignBit(size)) != 0) f |= RFlags.SF;
        return f;
    }

    /// <summary>Computes all six arithmetic flags from the lazy state.</summary>
    internal ulong ComputeArith()
    {
        var size = LfSize;
        var mask = SizeMask(size);
        var sign = SignBit(size);
        ulong dst = LfDst & mask, src = LfSrc & mask, res = LfRes & mask;
        ulong f;
        switch (LfOp)
        {
            case FlagOp.None:
                return FlagsArith;
            case FlagOp.Add:
                f = ResultFlags(res, size) | ((dst ^ src ^ res) & RFlags.AF);
                if (res < dst) f |= RFlags.CF;
                if (((dst ^ res) & (src ^ res) & sign) != 0) f |= RFlags.OF;
                return f;
            case FlagOp.Adc:
                f = ResultFlags(res, size) | ((dst ^ src ^ res) & RFlags.AF);
                if (res < dst || ((FlagsArith & RFlags.CF) != 0 && res == dst)) f |= RFlags.CF;
                if (((dst ^ res) & (src ^ res) & sign) != 0) f |= RFlags.OF;
                return f;
            case FlagOp.Sub:
                f = ResultFlags(res, size) | ((dst ^ src ^ res) & RFlags.AF);
                if (dst < src) f |= RFlags.CF;
                if (((dst ^ src) & (dst ^ res) & sign) != 0) f |= RFlags.OF;
                return f;
            case FlagOp.Sbb:
                f = ResultFlags(res, size) | ((dst ^ src ^ res) & RFlags.AF);
                if ((FlagsArith & RFlags.CF) != 0 ? dst <= src : dst < src) f |= RFlags.CF;
                if (((dst ^ src) & (dst ^ res) & sign) != 0) f |= RFlags.OF;
                return f;
            case FlagOp.Logic:
                return ResultFlags(res, size);
            case FlagOp.Inc:
                f = ResultFlags(res, size) | (FlagsArith & RFlags.CF) | ((dst ^ 1 ^ res) & RFlags.AF);
                if (res == sign) f |= RFlags.OF;
                return f;
            case FlagOp.Dec:
                f = ResultFlags(res, size) | (FlagsArith & RFlags.CF) | ((dst ^ 1 ^ res) & RFlags.AF);
                if (res == sign - 1) f |= RFlags.OF;
                return f;
            case FlagOp.Shl:
                return ShiftLeftFlags(dst, (int)LfSrc, res, size);
            case FlagOp.Shr:
                return ShiftRightFlags(dst, (int)LfSrc, res, size);
            case FlagOp.Sar:
                return SarFlags(dst, (int)LfSrc, res, size);
            default:
                throw new InvalidOperationException($"lazy flag op {LfOp}");
        }
    }

    // Shift flags (SDM Vol. 2B, SAL/SAR/SHL/SHR). CF is the last bit shifted out; SF, ZF, PF follow the
    // result; OF is defined for a count of 1 only (SHL: MSB(result) XOR CF; SHR: MSB of the operand;
    // SAR: 0). The undefined cases are produced as the host we test against (AMD Zen) produces them, which
    // is the count-1 rule applied to the last step:
    //   AF (undefined for any non-zero count): set.
    //   OF for counts above 1: SHL MSB(result) XOR CF; SHR 0 (the sign bit before the last step is 0); SAR 0.
    //   CF of an 8/16-bit SHL/SHR by the width or more: the bit a wide shifter moves out, i.e. for SHL the
    //     operand's LSB at count == width and 0 beyond; for SHR 0 beyond the width.

    private static ulong ShiftLeftFlags(ulong dst, int count, ulong res, int size)
    {
        var bits = size * 8;
        var f = ResultFlags(res, size) | RFlags.AF;
        var cf = count <= bits && ((dst >> (bits - count)) & 1) != 0;
        if (cf) f |= RFlags.CF;
        if (((res & SignBit(size)) != 0) != cf) f |= RFlags.OF;
        return f;
    }

    private static ulong ShiftRightFlags(ulong dst, int count, ulong res, int size)
    {
        var f = ResultFlags(res, size) | RFlags.AF;
        if (((dst >> (count - 1)) & 1) != 0) f |= RFlags.CF;
        if (count == 1 && (dst & SignBit(size)) != 0) f |= RFlags.OF;
        return f;
    }

    private static ulong SarFlags(ulong dst, int count, ulong res, int size)
    {
        var f = ResultFlags(res, size) | RFlags.AF;
        if (((SignExtend(dst, size) >> (count - 1)) & 1) != 0) f |= RFlags.CF;
        return f;
    }

    /// <summary>The full RFLAGS value.</summary>
    public ulong GetFlags() => FlagsRest | ComputeArith() | RFlags.Fixed1;

    /// <summary>Replaces RFLAGS (callers apply the privilege rules of POPF/IRET first).</summary>
    public void SetFlags(ulong value)
    {
        var oldVm = FlagsRest & RFlags.VM;
        FlagsArith = value & RFlags.Arith;
        LfOp = FlagOp.None;
        FlagsRest = (value & ~RFlags.Arith & RFlags.Writable) | RFlags.Fixed1;
        if ((FlagsRest & RFlags.VM) != oldVm) UpdateMode();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool GetCF() => LfOp switch
    {
        FlagOp.None or FlagOp.Inc or FlagOp.Dec => (FlagsArith & RFlags.CF) != 0,
        FlagOp.Logic => false,
        FlagOp.Sub => (LfDst & SizeMask(LfSize)) < (LfSrc & SizeMask(LfSize)),
        _ => (ComputeArith() & RFlags.CF) != 0,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool GetZF() => LfOp == FlagOp.None ? (FlagsArith & RFlags.ZF) != 0 : (LfRes & SizeMask(LfSize)) == 0;

    public bool IF => (FlagsRest & RFlags.IF) != 0;
    public bool DF => (FlagsRest & RFlags.DF) != 0;
    public int Iopl => (int)(FlagsRest >> RFlags.IoplShift) & 3;

    /// <summary>Evaluates a Jcc/SETcc/CMOVcc condition, without materialising flags for CMP/SUB and logic ops.</summary>
    internal bool Condition(ConditionCode cc) => ConditionInline(cc);

    /// <summary>
    /// <see cref="Condition"/> for inlining where <paramref name="cc"/> is a constant (the handlers of
    /// <c>ConditionForms</c>): the switches on it fold away, leaving one condition's test.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool ConditionInline(ConditionCode cc)
    {
        if (LfOp == FlagOp.Sub)
        {
            var size = LfSize;
            var mask = SizeMask(size);
            ulong d = LfDst & mask, s = LfSrc & mask;
            long sd = SignExtend(d, size), ss = SignExtend(s, size);
            switch (cc)
            {
                case ConditionCode.e: return d == s;
                case ConditionCode.ne: return d != s;
                case ConditionCode.b: return d < s;
                case ConditionCode.ae: return d >= s;
                case ConditionCode.be: return d <= s;
                case ConditionCode.a: return d > s;
                case ConditionCode.l: return sd < ss;
                case ConditionCode.ge: return sd >= ss;
                case ConditionCode.le: return sd <= ss;
                case ConditionCode.g: return sd > ss;
            }
        }
        else if (LfOp == FlagOp.Logic)
        {
            var res = LfRes & SizeMask(LfSize);
            var neg = (res & SignBit(LfSize)) != 0;
            switch (cc)
            {
                case ConditionCode.e: return res == 0;
                case ConditionCode.ne: return res != 0;
                case ConditionCode.s: return neg;
                case ConditionCode.ns: return !neg;
                case ConditionCode.l: return neg;
                case ConditionCode.ge: return !neg;
                case ConditionCode.le: return res == 0 || neg;
                case ConditionCode.g: return res != 0 && !neg;
            }
        }
        return ConditionFromFlags(cc, ComputeArith());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool ConditionFromFlags(ConditionCode cc, ulong f)
    {
        bool cf = (f & RFlags.CF) != 0, zf = (f & RFlags.ZF) != 0, sf = (f & RFlags.SF) != 0;
        bool of = (f & RFlags.OF) != 0, pf = (f & RFlags.PF) != 0;
        return cc switch
        {
            ConditionCode.o => of,
            ConditionCode.no => !of,
            ConditionCode.b => cf,
            ConditionCode.ae => !cf,
            ConditionCode.e => zf,
            ConditionCode.ne => !zf,
            ConditionCode.be => cf || zf,
            ConditionCode.a => !cf && !zf,
            ConditionCode.s => sf,
            ConditionCode.ns => !sf,
            ConditionCode.p => pf,
            ConditionCode.np => !pf,
            ConditionCode.l => sf != of,
            ConditionCode.ge => sf == of,
            ConditionCode.le => zf || sf != of,
            ConditionCode.g => !zf && sf == of,
            _ => throw new ArgumentOutOfRangeException(nameof(cc), cc, null),
        };
    }
}
