using System.Runtime.Intrinsics;
using Actorvisor.Kernel.Cpu.Float;
using Iced.Intel;
using static Actorvisor.Kernel.Cpu.Instructions.Simd;
using static Actorvisor.Kernel.Cpu.Instructions.SseFloat;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// SSE/SSE2 conversions between integers, singles and doubles (CVT*, CVTT* truncating), under MXCSR.
/// Float-to-integer conversions report IE (integer indefinite result) and PE, never DE.
/// </summary>
internal static unsafe class SseConvert
{
    public static void Register(Dispatch.HandlerTable t)
    {
        Set(t, Mnemonic.Cvtsi2ss, &Cvtsi2ss); Set(t, Mnemonic.Cvtsi2sd, &Cvtsi2sd);
        Set(t, Mnemonic.Cvtss2si, &Cvtss2si); Set(t, Mnemonic.Cvttss2si, &Cvttss2si);
        Set(t, Mnemonic.Cvtsd2si, &Cvtsd2si); Set(t, Mnemonic.Cvttsd2si, &Cvttsd2si);
        Set(t, Mnemonic.Cvtss2sd, &Cvtss2sd); Set(t, Mnemonic.Cvtsd2ss, &Cvtsd2ss);
        Set(t, Mnemonic.Cvtps2pd, &Cvtps2pd); Set(t, Mnemonic.Cvtpd2ps, &Cvtpd2ps);
        Set(t, Mnemonic.Cvtdq2ps, &Cvtdq2ps); Set(t, Mnemonic.Cvtps2dq, &Cvtps2dq); Set(t, Mnemonic.Cvttps2dq, &Cvttps2dq);
        Set(t, Mnemonic.Cvtdq2pd, &Cvtdq2pd); Set(t, Mnemonic.Cvtpd2dq, &Cvtpd2dq); Set(t, Mnemonic.Cvttpd2dq, &Cvttpd2dq);
        Set(t, Mnemonic.Cvtpi2ps, &Cvtpi2ps); Set(t, Mnemonic.Cvtps2pi, &Cvtps2pi); Set(t, Mnemonic.Cvttps2pi, &Cvttps2pi);
        Set(t, Mnemonic.Cvtpi2pd, &Cvtpi2pd); Set(t, Mnemonic.Cvtpd2pi, &Cvtpd2pi); Set(t, Mnemonic.Cvttpd2pi, &Cvttpd2pi);
    }

    private static readonly FloatFormat S = FloatFormat.Single, D = FloatFormat.Double;

    // ---- integer to float ----

    private static void IntToScalar(SoftwareCpu c, in Instruction i, bool dbl)
    {
        Enter(c, in i);
        var size = SoftwareCpu.OperandSize(in i, 1);
        var raw = Read(c, in i, 1).AsUInt64().GetElement(0);
        var v = size == 8 ? (long)raw : (int)raw;
        var flags = 0;
        var r = SoftFloat.FromInt(dbl ? D : S, v, Rc(c), ref flags);
        Commit(c, flags);
        var a = Read(c, in i, 0);
        Write(c, in i, 0, dbl ? a.AsUInt64().WithElement(0, r).AsByte() : a.AsUInt32().WithElement(0, (uint)r).AsByte());
    }

    private static void Cvtsi2ss(SoftwareCpu c, in Instruction i) => IntToScalar(c, in i, false);
    private static void Cvtsi2sd(SoftwareCpu c, in Instruction i) => IntToScalar(c, in i, true);

    // ---- float to integer ----

    private static long ToInt(SoftwareCpu c, FloatFormat f, ulong v, int bits, bool truncate, ref int flags)
    {
        var lf = 0;
        var r = SoftFloat.ToInt(f, v, bits, truncate ? SoftFloat.RoundZero : Rc(c), Daz(c), ref lf);
        flags |= lf & ~SoftFloat.DE;
        return r;
    }

    private static void ScalarToInt(SoftwareCpu c, in Instruction i, bool dbl, bool truncate)
    {
        Enter(c, in i);
        var v = Read(c, in i, 1).AsUInt64().GetElement(0);
        if (!dbl) v = (uint)v;
        var bits = i.Op0Register.GetSize() * 8;
        var flags = 0;
        var r = ToInt(c, dbl ? D : S, v, bits, truncate, ref flags);
        Commit(c, flags);
        c.WriteGpr(i.Op0Register, bits == 64 ? (ulong)r : (uint)r);
    }

    private static void Cvtss2si(SoftwareCpu c, in Instruction i) => ScalarToInt(c, in i, false, false);
    private static void Cvttss2si(SoftwareCpu c, in Instruction i) => ScalarToInt(c, in i, false, true);
    private static void Cvtsd2si(SoftwareCpu c, in Instruction i) => ScalarToInt(c, in i, true, false);
    private static void Cvttsd2si(SoftwareCpu c, in Instruction i) => ScalarToInt(c, in i, true, true);

    // ---- float to float ----

    private static ulong Narrow(SoftwareCpu c, FloatFormat from, FloatFormat to, ulong v, ref int flags)
    {
        var lf = 0;
        var r = SoftFloat.Convert(from, to, v, Rc(c), Daz(c), Ftz(c), ref lf);
        if (IsNaN(from, v)) lf &= ~SoftFloat.DE;
        flags |= lf;
        return r;
    }

    private static void Cvtss2sd(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var flags = 0;
        var r = Narrow(c, S, D, (uint)Read(c, in i, 1).AsUInt64().GetElement(0), ref flags);
        Commit(c, flags);
        Write(c, in i, 0, Read(c, in i, 0).AsUInt64().WithElement(0, r).AsByte());
    }

    private static void Cvtsd2ss(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var flags = 0;
        var r = Narrow(c, D, S, Read(c, in i, 1).AsUInt64().GetElement(0), ref flags);
        Commit(c, flags);
        Write(c, in i, 0, Read(c, in i, 0).AsUInt32().WithElement(0, (uint)r).AsByte());
    }

    private static void Cvtps2pd(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsUInt32();
        var flags = 0;
        var r0 = Narrow(c, S, D, s.GetElement(0), ref flags);
        var r1 = Narrow(c, S, D, s.GetElement(1), ref flags);
        Commit(c, flags);
        Write(c, in i, 0, Vector128.Create(r0, r1).AsByte());
    }

    private static void Cvtpd2ps(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsUInt64();
        var flags = 0;
        var r0 = (uint)Narrow(c, D, S, s.GetElement(0), ref flags);
        var r1 = (uint)Narrow(c, D, S, s.GetElement(1), ref flags);
        Commit(c, flags);
        Write(c, in i, 0, Vector128.Create(r0, r1, 0u, 0u).AsByte());
    }

    // ---- packed integer <-> float ----

    private static void Cvtdq2ps(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsInt32();
        var flags = 0;
        var r = Vector128<uint>.Zero;
        for (var k = 0; k < 4; k++) r = r.WithElement(k, (uint)SoftFloat.FromInt(S, s.GetElement(k), Rc(c), ref flags));
        Commit(c, flags);
        Write(c, in i, 0, r.AsByte());
    }

    /// <summary>Two (low) int32 to doubles: exact. CVTPI2PD reads them from an MMX register or m64.</summary>
    private static void Cvtdq2pd(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsInt32();
        var flags = 0;
        var r = Vector128.Create(SoftFloat.FromInt(D, s.GetElement(0), 0, ref flags), SoftFloat.FromInt(D, s.GetElement(1), 0, ref flags));
        Write(c, in i, 0, r.AsByte());
    }

    private static void SinglesToInts(SoftwareCpu c, in Instruction i, int n, bool truncate)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsUInt32();
        var flags = 0;
        var r = Vector128<uint>.Zero;
        for (var k = 0; k < n; k++) r = r.WithElement(k, (uint)ToInt(c, S, s.GetElement(k), 32, truncate, ref flags));
        Commit(c, flags);
        Write(c, in i, 0, r.AsByte());
    }

    private static void DoublesToInts(SoftwareCpu c, in Instruction i, bool truncate)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsUInt64();
        var flags = 0;
        var r = Vector128<uint>.Zero;
        for (var k = 0; k < 2; k++) r = r.WithElement(k, (uint)ToInt(c, D, s.GetElement(k), 32, truncate, ref flags));
        Commit(c, flags);
        Write(c, in i, 0, r.AsByte());
    }

    private static void Cvtps2dq(SoftwareCpu c, in Instruction i) => SinglesToInts(c, in i, 4, false);
    private static void Cvttps2dq(SoftwareCpu c, in Instruction i) => SinglesToInts(c, in i, 4, true);
    private static void Cvtpd2dq(SoftwareCpu c, in Instruction i) => DoublesToInts(c, in i, false);
    private static void Cvttpd2dq(SoftwareCpu c, in Instruction i) => DoublesToInts(c, in i, true);

    /// <summary>CVTPI2PS: two int32 from mm/m64 into the low singles; the high half of the destination is kept.</summary>
    private static void Cvtpi2ps(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsInt32();
        var flags = 0;
        var a = Read(c, in i, 0).AsUInt32();
        var r0 = (uint)SoftFloat.FromInt(S, s.GetElement(0), Rc(c), ref flags);
        var r1 = (uint)SoftFloat.FromInt(S, s.GetElement(1), Rc(c), ref flags);
        Commit(c, flags);
        Write(c, in i, 0, a.WithElement(0, r0).WithElement(1, r1).AsByte());
    }

    private static void Cvtps2pi(SoftwareCpu c, in Instruction i) => SinglesToInts(c, in i, 2, false);
    private static void Cvttps2pi(SoftwareCpu c, in Instruction i) => SinglesToInts(c, in i, 2, true);
    private static void Cvtpi2pd(SoftwareCpu c, in Instruction i) => Cvtdq2pd(c, in i);
    private static void Cvtpd2pi(SoftwareCpu c, in Instruction i) => DoublesToInts(c, in i, false);
    private static void Cvttpd2pi(SoftwareCpu c, in Instruction i) => DoublesToInts(c, in i, true);
}
