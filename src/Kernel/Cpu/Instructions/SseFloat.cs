using System.Runtime.Intrinsics;
using Actorvisor.Kernel.Cpu.Float;
using Iced.Intel;
using static Actorvisor.Kernel.Cpu.Instructions.Simd;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// SSE/SSE2 floating-point arithmetic, min/max, square root, compares and COMIS/UCOMIS, computed with
/// <see cref="SoftFloat"/> under MXCSR (rounding control, DAZ, FTZ, flags, masks). An unmasked exception
/// leaves the destination unchanged and raises #XM, or #UD when CR4.OSXMMEXCPT is clear.
/// </summary>
internal static unsafe class SseFloat
{
    public static void Register(Dispatch.HandlerTable t)
    {
        Set(t, Mnemonic.Addps, &Addps); Set(t, Mnemonic.Addss, &Addss); Set(t, Mnemonic.Addpd, &Addpd); Set(t, Mnemonic.Addsd, &Addsd);
        Set(t, Mnemonic.Subps, &Subps); Set(t, Mnemonic.Subss, &Subss); Set(t, Mnemonic.Subpd, &Subpd); Set(t, Mnemonic.Subsd, &Subsd);
        Set(t, Mnemonic.Mulps, &Mulps); Set(t, Mnemonic.Mulss, &Mulss); Set(t, Mnemonic.Mulpd, &Mulpd); Set(t, Mnemonic.Mulsd, &Mulsd);
        Set(t, Mnemonic.Divps, &Divps); Set(t, Mnemonic.Divss, &Divss); Set(t, Mnemonic.Divpd, &Divpd); Set(t, Mnemonic.Divsd, &Divsd);
        Set(t, Mnemonic.Minps, &Minps); Set(t, Mnemonic.Minss, &Minss); Set(t, Mnemonic.Minpd, &Minpd); Set(t, Mnemonic.Minsd, &Minsd);
        Set(t, Mnemonic.Maxps, &Maxps); Set(t, Mnemonic.Maxss, &Maxss); Set(t, Mnemonic.Maxpd, &Maxpd); Set(t, Mnemonic.Maxsd, &Maxsd);
        Set(t, Mnemonic.Sqrtps, &Sqrtps); Set(t, Mnemonic.Sqrtss, &Sqrtss); Set(t, Mnemonic.Sqrtpd, &Sqrtpd); Set(t, Mnemonic.Sqrtsd, &Sqrtsd);
        Set(t, Mnemonic.Cmpps, &Cmpps); Set(t, Mnemonic.Cmpss, &Cmpss); Set(t, Mnemonic.Cmppd, &Cmppd);
        Set(t, Mnemonic.Cmpsd, &Cmpsd); // by code: the string CMPSD keeps its handler
        Set(t, Mnemonic.Comiss, &Comiss); Set(t, Mnemonic.Ucomiss, &Ucomiss); Set(t, Mnemonic.Comisd, &Comisd); Set(t, Mnemonic.Ucomisd, &Ucomisd);
    }

    internal delegate ulong Lane(FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int flags);

    internal static int Rc(SoftwareCpu c) => (int)(c.Mxcsr >> MxcsrBits.RcShift) & 3;
    internal static bool Daz(SoftwareCpu c) => (c.Mxcsr & MxcsrBits.DAZ) != 0;
    internal static bool Ftz(SoftwareCpu c) => (c.Mxcsr & MxcsrBits.FTZ) != 0;

    /// <summary>Records the flags; for any unmasked one raises #XM (or #UD without CR4.OSXMMEXCPT) before the destination is written.</summary>
    internal static void Commit(SoftwareCpu c, int flags)
    {
        c.Mxcsr |= (uint)flags;
        var unmasked = flags & ~(int)(c.Mxcsr >> MxcsrBits.MaskShift) & 0x3F;
        if (unmasked == 0) return;
        if ((c.Cr4 & Cr4.OSXMMEXCPT) == 0) throw CpuFault.InvalidOpcode();
        throw CpuFault.Of(Vectors.XM);
    }

    /// <summary>op dst, src over 4 singles or 2 doubles; scalar forms compute lane 0 and keep the rest of dst.</summary>
    /// <summary>
    /// One lane. Only the highest-priority pre-computation exception of a lane is reported (SDM Vol. 1,
    /// 4.9.2): a NaN operand, an invalid operation or a division by zero hides the denormal-operand flag.
    /// </summary>
    internal static ulong Lane1(Lane op, FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int flags, bool unary)
    {
        var lf = 0;
        var r = op(f, a, b, rc, daz, ftz, ref lf);
        if ((lf & (SoftFloat.IE | SoftFloat.ZE)) != 0 || IsNaN(f, b) || (!unary && IsNaN(f, a))) lf &= ~SoftFloat.DE;
        flags |= lf;
        return r;
    }

    internal static bool IsNaN(FloatFormat f, ulong v) => (v & ~f.SignBit) > f.Infinity;

    private static void Run(SoftwareCpu c, in Instruction i, bool dbl, bool scalar, Lane op, bool unary = false)
    {
        Enter(c, in i);
        var b = Read(c, in i, 1);
        var a = Read(c, in i, 0);
        var f = dbl ? FloatFormat.Double : FloatFormat.Single;
        int rc = Rc(c), flags = 0;
        bool daz = Daz(c), ftz = Ftz(c);
        Vector128<byte> r;
        if (dbl)
        {
            var x = a.AsUInt64();
            var y = b.AsUInt64();
            var n = scalar ? 1 : 2;
            for (var k = 0; k < n; k++) x = x.WithElement(k, Lane1(op, f, x.GetElement(k), y.GetElement(k), rc, daz, ftz, ref flags, unary));
            r = x.AsByte();
        }
        else
        {
            var x = a.AsUInt32();
            var y = b.AsUInt32();
            var n = scalar ? 1 : 4;
            for (var k = 0; k < n; k++) x = x.WithElement(k, (uint)Lane1(op, f, x.GetElement(k), y.GetElement(k), rc, daz, ftz, ref flags, unary));
            r = x.AsByte();
        }
        Commit(c, flags);
        Write(c, in i, 0, r);
    }

    private static readonly Lane AddOp = static (FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int fl) => SoftFloat.Add(f, a, b, false, rc, daz, ftz, ref fl);
    private static readonly Lane SubOp = static (FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int fl) => SoftFloat.Add(f, a, b, true, rc, daz, ftz, ref fl);
    private static readonly Lane MulOp = static (FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int fl) => SoftFloat.Mul(f, a, b, rc, daz, ftz, ref fl);
    private static readonly Lane DivOp = static (FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int fl) => SoftFloat.Div(f, a, b, rc, daz, ftz, ref fl);
    private static readonly Lane SqrtOp = static (FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int fl) => SoftFloat.Sqrt(f, b, rc, daz, ftz, ref fl);
    private static readonly Lane MinOp = static (FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int fl) => MinMax(f, a, b, daz, false, ref fl);
    private static readonly Lane MaxOp = static (FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int fl) => MinMax(f, a, b, daz, true, ref fl);

    /// <summary>MIN/MAX: the second operand when either is a NaN (IE for any NaN) or both are zero; DAZ zeroes denormals first.</summary>
    private static ulong MinMax(FloatFormat f, ulong a, ulong b, bool daz, bool max, ref int flags)
    {
        var ua = SoftFloat.Unpack(f, a, daz, ref flags);
        var ub = SoftFloat.Unpack(f, b, daz, ref flags);
        if (ua.Denormal && ua.Class == FloatClass.Zero) a = SoftFloat.Zero(f, ua.Negative);
        if (ub.Denormal && ub.Class == FloatClass.Zero) b = SoftFloat.Zero(f, ub.Negative);
        var cmp = SoftFloat.Compare(ua, ub);
        if (cmp is not { } c) { flags |= SoftFloat.IE; return b; }
        return (max ? c > 0 : c < 0) ? a : b;
    }

    private static void Addps(SoftwareCpu c, in Instruction i) => Run(c, in i, false, false, AddOp);
    private static void Addss(SoftwareCpu c, in Instruction i) => Run(c, in i, false, true, AddOp);
    private static void Addpd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, false, AddOp);
    private static void Addsd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, true, AddOp);
    private static void Subps(SoftwareCpu c, in Instruction i) => Run(c, in i, false, false, SubOp);
    private static void Subss(SoftwareCpu c, in Instruction i) => Run(c, in i, false, true, SubOp);
    private static void Subpd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, false, SubOp);
    private static void Subsd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, true, SubOp);
    private static void Mulps(SoftwareCpu c, in Instruction i) => Run(c, in i, false, false, MulOp);
    private static void Mulss(SoftwareCpu c, in Instruction i) => Run(c, in i, false, true, MulOp);
    private static void Mulpd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, false, MulOp);
    private static void Mulsd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, true, MulOp);
    private static void Divps(SoftwareCpu c, in Instruction i) => Run(c, in i, false, false, DivOp);
    private static void Divss(SoftwareCpu c, in Instruction i) => Run(c, in i, false, true, DivOp);
    private static void Divpd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, false, DivOp);
    private static void Divsd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, true, DivOp);
    private static void Minps(SoftwareCpu c, in Instruction i) => Run(c, in i, false, false, MinOp);
    private static void Minss(SoftwareCpu c, in Instruction i) => Run(c, in i, false, true, MinOp);
    private static void Minpd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, false, MinOp);
    private static void Minsd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, true, MinOp);
    private static void Maxps(SoftwareCpu c, in Instruction i) => Run(c, in i, false, false, MaxOp);
    private static void Maxss(SoftwareCpu c, in Instruction i) => Run(c, in i, false, true, MaxOp);
    private static void Maxpd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, false, MaxOp);
    private static void Maxsd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, true, MaxOp);
    private static void Sqrtps(SoftwareCpu c, in Instruction i) => Run(c, in i, false, false, SqrtOp, true);
    private static void Sqrtss(SoftwareCpu c, in Instruction i) => Run(c, in i, false, true, SqrtOp, true);
    private static void Sqrtpd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, false, SqrtOp, true);
    private static void Sqrtsd(SoftwareCpu c, in Instruction i) => Run(c, in i, true, true, SqrtOp, true);

    // ---- compares ----

    /// <summary>CMPxx predicate 0-7 (EQ LT LE UNORD NEQ NLT NLE ORD): LT/LE/NLT/NLE signal IE on any NaN, the others on SNaN only.</summary>
    private static bool Predicate(FloatFormat f, ulong a, ulong b, int pred, bool daz, ref int flags)
    {
        var ua = SoftFloat.Unpack(f, a, daz, ref flags);
        var ub = SoftFloat.Unpack(f, b, daz, ref flags);
        var signalsQuiet = pred is 1 or 2 or 5 or 6;
        if (ua.Class == FloatClass.SNaN || ub.Class == FloatClass.SNaN || (signalsQuiet && (ua.IsNaN || ub.IsNaN))) flags |= SoftFloat.IE;
        var c = SoftFloat.Compare(ua, ub);
        return pred switch
        {
            0 => c == 0,
            1 => c < 0,
            2 => c <= 0,
            3 => c == null,
            4 => c != 0,
            5 => !(c < 0),
            6 => !(c <= 0),
            _ => c != null,
        };
    }

    private static void Compare(SoftwareCpu c, in Instruction i, bool dbl, bool scalar)
    {
        var pred = i.Immediate8 & 7;
        Run(c, in i, dbl, scalar, pred switch
        {
            0 => Cmp0, 1 => Cmp1, 2 => Cmp2, 3 => Cmp3, 4 => Cmp4, 5 => Cmp5, 6 => Cmp6, _ => Cmp7,
        });
    }

    private static Lane CmpLane(int pred) => (FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int fl) =>
        Predicate(f, a, b, pred, daz, ref fl) ? (f.TotalBits == 64 ? ulong.MaxValue : 0xFFFF_FFFFUL) : 0;

    private static readonly Lane Cmp0 = CmpLane(0), Cmp1 = CmpLane(1), Cmp2 = CmpLane(2), Cmp3 = CmpLane(3),
        Cmp4 = CmpLane(4), Cmp5 = CmpLane(5), Cmp6 = CmpLane(6), Cmp7 = CmpLane(7);

    private static void Cmpps(SoftwareCpu c, in Instruction i) => Compare(c, in i, false, false);
    private static void Cmpss(SoftwareCpu c, in Instruction i) => Compare(c, in i, false, true);
    private static void Cmppd(SoftwareCpu c, in Instruction i) => Compare(c, in i, true, false);
    private static void Cmpsd(SoftwareCpu c, in Instruction i) => Compare(c, in i, true, true);

    /// <summary>COMIS/UCOMIS: ZF,PF,CF = 111 unordered, 000 greater, 001 less, 100 equal; OF, SF, AF cleared.</summary>
    private static void ComparedFlags(SoftwareCpu c, in Instruction i, bool dbl, bool signalQuiet)
    {
        Enter(c, in i);
        var b = Read(c, in i, 1).AsUInt64().GetElement(0);
        var a = Read(c, in i, 0).AsUInt64().GetElement(0);
        var f = dbl ? FloatFormat.Double : FloatFormat.Single;
        if (!dbl) { a = (uint)a; b = (uint)b; }
        var flags = 0;
        var ua = SoftFloat.Unpack(f, a, Daz(c), ref flags);
        var ub = SoftFloat.Unpack(f, b, Daz(c), ref flags);
        if (ua.Class == FloatClass.SNaN || ub.Class == FloatClass.SNaN || (signalQuiet && (ua.IsNaN || ub.IsNaN))) flags |= SoftFloat.IE;
        if (ua.IsNaN || ub.IsNaN) flags &= ~SoftFloat.DE;
        Commit(c, flags);
        var cmp = SoftFloat.Compare(ua, ub);
        var fl = c.GetFlags() & ~RFlags.Arith;
        fl |= cmp switch
        {
            null => RFlags.ZF | RFlags.PF | RFlags.CF,
            < 0 => RFlags.CF,
            0 => RFlags.ZF,
            _ => 0UL,
        };
        c.SetFlags(fl);
    }

    private static void Comiss(SoftwareCpu c, in Instruction i) => ComparedFlags(c, in i, false, true);
    private static void Ucomiss(SoftwareCpu c, in Instruction i) => ComparedFlags(c, in i, false, false);
    private static void Comisd(SoftwareCpu c, in Instruction i) => ComparedFlags(c, in i, true, true);
    private static void Ucomisd(SoftwareCpu c, in Instruction i) => ComparedFlags(c, in i, true, false);
}
