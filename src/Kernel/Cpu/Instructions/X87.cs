using System.Numerics;
using Actorvisor.Kernel.Cpu.Float;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// x87 data instructions on the 80-bit register stack: loads and stores (real, integer, constants),
/// arithmetic (FADD..FDIVR with P and I forms), FSQRT, FABS, FCHS, FRNDINT, compares (FCOM*, FUCOM*,
/// FICOM*, FCOMI*, FTST, FXAM), FXCH, FCMOVcc. Exact under FCW precision and rounding control via
/// <see cref="Extended"/>. Masked exceptions give the IEEE default results; for unmasked invalid,
/// zero-divide or denormal exceptions the destination is left unchanged and FSW.ES/B are set, so the next
/// waiting instruction raises #MF. Not modelled: the bias-adjusted results of unmasked overflow/underflow
/// (the masked result is stored), and FIP/FDP/FOP updates.
/// </summary>
internal static unsafe class X87
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Fld, &Fld);
        t.Set(Mnemonic.Fst, &Fst);
        t.Set(Mnemonic.Fstp, &Fst);
        t.Set(Mnemonic.Fild, &Fild);
        t.Set(Mnemonic.Fist, &Fist);
        t.Set(Mnemonic.Fistp, &Fist);
        foreach (var m in new[] { Mnemonic.Fld1, Mnemonic.Fldz, Mnemonic.Fldpi, Mnemonic.Fldl2e, Mnemonic.Fldl2t, Mnemonic.Fldlg2, Mnemonic.Fldln2 })
            t.Set(m, &Fldconst);
        foreach (var m in new[] { Mnemonic.Fadd, Mnemonic.Faddp, Mnemonic.Fiadd, Mnemonic.Fsub, Mnemonic.Fsubp, Mnemonic.Fisub,
                     Mnemonic.Fsubr, Mnemonic.Fsubrp, Mnemonic.Fisubr, Mnemonic.Fmul, Mnemonic.Fmulp, Mnemonic.Fimul,
                     Mnemonic.Fdiv, Mnemonic.Fdivp, Mnemonic.Fidiv, Mnemonic.Fdivr, Mnemonic.Fdivrp, Mnemonic.Fidivr })
            t.Set(m, &Arith);
        foreach (var m in new[] { Mnemonic.Fcom, Mnemonic.Fcomp, Mnemonic.Fcompp, Mnemonic.Fucom, Mnemonic.Fucomp, Mnemonic.Fucompp,
                     Mnemonic.Ficom, Mnemonic.Ficomp, Mnemonic.Ftst })
            t.Set(m, &Fcom);
        foreach (var m in new[] { Mnemonic.Fcomi, Mnemonic.Fcomip, Mnemonic.Fucomi, Mnemonic.Fucomip })
            t.Set(m, &Fcomi);
        t.Set(Mnemonic.Fxam, &Fxam);
        t.Set(Mnemonic.Fxch, &Fxch);
        t.Set(Mnemonic.Fchs, &Fchs);
        t.Set(Mnemonic.Fabs, &Fabs);
        t.Set(Mnemonic.Fsqrt, &Fsqrt);
        t.Set(Mnemonic.Frndint, &Frndint);
        t.Set(Mnemonic.Fscale, &Fscale);
        t.Set(Mnemonic.Fxtract, &Fxtract);
        foreach (var m in new[] { Mnemonic.Fcmovb, Mnemonic.Fcmove, Mnemonic.Fcmovbe, Mnemonic.Fcmovu, Mnemonic.Fcmovnb,
                     Mnemonic.Fcmovne, Mnemonic.Fcmovnbe, Mnemonic.Fcmovnu })
            t.Set(m, &Fcmov);
    }

    // ---- stack ----

    private static int Phys(SoftwareCpu c, int i) => (c.FpuTop + i) & 7;
    private static bool Empty(SoftwareCpu c, int i) => (c.FpuTags & (1 << Phys(c, i))) == 0;
    private static Ext80 St(SoftwareCpu c, int i) { var p = Phys(c, i); return new Ext80(c.FpuMant[p], c.FpuExp[p]); }

    private static void SetSt(SoftwareCpu c, int i, Ext80 v)
    {
        var p = Phys(c, i);
        c.FpuMant[p] = v.Mant;
        c.FpuExp[p] = v.SignExp;
        c.FpuTags |= (byte)(1 << p);
    }

    private static void Pop(SoftwareCpu c)
    {
        c.FpuTags = (byte)(c.FpuTags & ~(1 << Phys(c, 0)));
        c.FpuTop++;
    }

    private static int StIndex(Iced.Intel.Register r) => r - Iced.Intel.Register.ST0;

    private static int Pc(SoftwareCpu c) => ((c.Fcw >> 8) & 3) switch { 0 => 24, 2 => 53, _ => 64 };
    private static int Rc(SoftwareCpu c) => (c.Fcw >> 10) & 3;

    private const ushort CondMask = FswBits.C0 | FswBits.C1 | FswBits.C2 | FswBits.C3;

    /// <summary>
    /// Records exception flags (and SF for stack faults) and C1; returns false when an unmasked invalid,
    /// denormal or zero-divide exception means the destination must stay unchanged.
    /// </summary>
    private static bool Finish(SoftwareCpu c, int flags, bool c1, bool stackFault = false)
    {
        var fsw = (ushort)(c.Fsw & ~FswBits.C1);
        if (c1) fsw |= FswBits.C1;
        fsw |= (ushort)flags;
        if (stackFault) fsw |= FswBits.SF;
        c.Fsw = fsw;
        Fpu.UpdateErrorSummary(c);
        var unmasked = flags & ~c.Fcw & 0x3F;
        return (unmasked & (SoftFloat.IE | SoftFloat.DE | SoftFloat.ZE)) == 0;
    }

    /// <summary>Stack underflow: IE + SF, C1 = 0; with IE masked the destination gets the indefinite.</summary>
    private static bool Underflow(SoftwareCpu c) => Finish(c, SoftFloat.IE, false, stackFault: true);

    /// <summary>Pushes; onto a full register: IE + SF, C1 = 1, and (masked) the indefinite is pushed instead.</summary>
    private static void Push(SoftwareCpu c, Ext80 v, int flags, bool c1)
    {
        if (!Empty(c, -1))
        {
            if (!Finish(c, flags | SoftFloat.IE, true, stackFault: true)) return;
            v = Ext80.Indefinite;
        }
        else if (!Finish(c, flags, c1)) return;
        c.FpuTop--;
        SetSt(c, 0, v);
    }

    // ---- memory operands ----

    private static Ext80 ReadReal(SoftwareCpu c, in Instruction i, ref int flags)
    {
        var size = i.MemorySize.GetSize();
        var la = c.MemoryLinear(in i, size, AccessKind.Read);
        return size switch
        {
            4 => Extended.FromFormat(FloatFormat.Single, c.ReadLinear(la, 4), ref flags),
            8 => Extended.FromFormat(FloatFormat.Double, c.ReadLinear(la, 8), ref flags),
            _ => new Ext80(c.ReadLinear(la, 8), (ushort)c.ReadLinear(la + 8, 2)),
        };
    }

    private static Ext80 FromInt(long v)
    {
        var ignored = 0;
        return v == 0 ? Ext80.Zero(false) : Extended.Round(v < 0, BigInteger.Abs(v), 0, false, 64, 0, ref ignored, out _);
    }

    private static Ext80 ReadInt(SoftwareCpu c, in Instruction i)
    {
        var size = i.MemorySize.GetSize();
        var raw = c.ReadLinear(c.MemoryLinear(in i, size, AccessKind.Read), size);
        long v = size switch { 2 => (short)raw, 4 => (int)raw, _ => (long)raw };
        return FromInt(v);
    }

    /// <summary>The source operand of a two-operand form: memory (real or integer), or the second register.</summary>
    private static Ext80 Source(SoftwareCpu c, in Instruction i, ref int flags, out bool underflow)
    {
        underflow = false;
        if (i.OpCount == 1 && i.Op0Kind == OpKind.Memory || i.OpCount >= 1 && i.GetOpKind(i.OpCount - 1) == OpKind.Memory)
        {
            var intForm = i.Mnemonic is Mnemonic.Fiadd or Mnemonic.Fisub or Mnemonic.Fisubr or Mnemonic.Fimul or Mnemonic.Fidiv
                or Mnemonic.Fidivr or Mnemonic.Ficom or Mnemonic.Ficomp;
            return intForm ? ReadInt(c, in i) : ReadReal(c, in i, ref flags);
        }
        var idx = i.OpCount >= 2 ? StIndex(i.Op1Register) : i.OpCount == 1 ? StIndex(i.Op0Register) : 1;
        if (i.OpCount == 2 && StIndex(i.Op0Register) != 0) idx = StIndex(i.Op1Register);
        underflow = Empty(c, idx);
        return St(c, idx);
    }

    // ---- loads and stores ----

    private static void Fld(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        var flags = 0;
        Ext80 v;
        if (i.Op0Kind == OpKind.Memory) v = ReadReal(c, in i, ref flags);
        else
        {
            var idx = StIndex(i.Op0Register);
            if (Empty(c, idx))
            {
                // Underflow wins (C1 = 0); masked, the indefinite is pushed.
                if (!Underflow(c)) return;
                c.FpuTop--;
                SetSt(c, 0, Ext80.Indefinite);
                return;
            }
            v = St(c, idx);
        }
        if ((flags & SoftFloat.IE) != 0) flags &= ~SoftFloat.DE;
        Push(c, v, flags, false);
    }

    private static void Fst(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        var pop = i.Mnemonic == Mnemonic.Fstp;
        var empty = Empty(c, 0);
        var v = empty ? Ext80.Indefinite : St(c, 0);
        var flags = empty ? SoftFloat.IE : 0;
        var up = false;
        if (i.Op0Kind == OpKind.Memory)
        {
            var size = i.MemorySize.GetSize();
            var la = c.MemoryLinear(in i, size, AccessKind.Write);
            ulong bits = 0;
            if (!empty && size != 10)
                bits = Extended.ToFormat(size == 4 ? FloatFormat.Single : FloatFormat.Double, v, Rc(c), ref flags, out up);
            else if (size != 10) bits = size == 4 ? FloatFormat.Single.DefaultNaN : FloatFormat.Double.DefaultNaN;
            if ((flags & SoftFloat.IE) != 0) flags &= ~SoftFloat.DE;
            if (!Finish(c, flags, up, empty)) return;
            if (size == 10)
            {
                c.ProbeWrite(la, 10);
                c.WriteLinear(la, 8, v.Mant);
                c.WriteLinear(la + 8, 2, v.SignExp);
            }
            else c.WriteLinear(la, size, bits);
        }
        else
        {
            if (!Finish(c, flags, false, empty)) return;
            SetSt(c, StIndex(i.Op0Register), v);
        }
        if (pop) Pop(c);
    }

    private static void Fild(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        Push(c, ReadInt(c, in i), 0, false);
    }

    /// <summary>
    /// FIST/FISTP under FCW rounding; out of range or NaN → the integer indefinite with IE. The truncating
    /// path serves FISTTP, which is SSE3 and so not registered while CPUID does not advertise SSE3.
    /// </summary>
    private static void Fist(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        var size = i.MemorySize.GetSize();
        var la = c.MemoryLinear(in i, size, AccessKind.Write);
        var empty = Empty(c, 0);
        var flags = 0;
        var up = false;
        long r;
        var indefinite = size switch { 2 => short.MinValue, 4 => int.MinValue, _ => long.MinValue };
        if (empty) { flags = SoftFloat.IE; r = indefinite; }
        else
        {
            var u = Extended.Unpack(St(c, 0), ref flags, out var bad);
            flags &= ~SoftFloat.DE;
            if (bad || u.IsNaN || u.Class == FloatClass.Infinity) { flags |= SoftFloat.IE; r = indefinite; }
            else if (u.Class == FloatClass.Zero) r = 0;
            else
            {
                var rc = i.Mnemonic == Mnemonic.Fisttp ? SoftFloat.RoundZero : Rc(c);
                var mag = (BigInteger)u.Significand;
                BigInteger q;
                if (u.Exponent >= 0) q = mag << Math.Min(u.Exponent, 100);
                else
                {
                    var sh = Math.Min(-u.Exponent, 200);
                    q = mag >> sh;
                    var rem = mag - (q << sh);
                    if (!rem.IsZero)
                    {
                        flags |= SoftFloat.PE;
                        var half = BigInteger.One << (sh - 1);
                        var inc = rc switch
                        {
                            SoftFloat.RoundNearest => rem > half || (rem == half && !q.IsEven),
                            SoftFloat.RoundUp => !u.Negative,
                            SoftFloat.RoundDown => u.Negative,
                            _ => false,
                        };
                        if (inc) { q += 1; up = true; }
                    }
                }
                var s = u.Negative ? -q : q;
                var bits = size * 8;
                if (s < -(BigInteger.One << (bits - 1)) || s > (BigInteger.One << (bits - 1)) - 1)
                {
                    flags = SoftFloat.IE;
                    up = false;
                    r = indefinite;
                }
                else r = (long)s;
            }
        }
        if (!Finish(c, flags, up, empty)) return;
        c.WriteLinear(la, size, (ulong)r);
        if (i.Mnemonic != Mnemonic.Fist) Pop(c);
    }

    /// <summary>The constants as 128-bit significands (value = sig × 2^(exp - 16383 - 127)), rounded under RC.</summary>
    private static void Fldconst(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        (UInt128 sig, int exp) k = i.Mnemonic switch
        {
            Mnemonic.Fld1 => (new UInt128(0x8000_0000_0000_0000, 0), 0x3FFF),
            Mnemonic.Fldpi => (new UInt128(0xC90F_DAA2_2168_C234, 0xC4C6_628B_80DC_1CD1), 0x4000),
            Mnemonic.Fldl2e => (new UInt128(0xB8AA_3B29_5C17_F0BB, 0xBE87_FED0_691D_3E89), 0x3FFF),
            Mnemonic.Fldl2t => (new UInt128(0xD49A_784B_CD1B_8AFE, 0x492B_F6FF_4DAF_DB4C), 0x4000),
            Mnemonic.Fldlg2 => (new UInt128(0x9A20_9A84_FBCF_F798, 0x8F89_59AC_0B7C_9178), 0x3FFD),
            Mnemonic.Fldln2 => (new UInt128(0xB172_17F7_D1CF_79AB, 0xC9E3_B398_03F2_F6AF), 0x3FFE),
            _ => (UInt128.Zero, 0),
        };
        Ext80 v;
        if (k.sig == UInt128.Zero) v = Ext80.Zero(false);
        else
        {
            var ignored = 0;
            // Only 1 is exact; the others have bits beyond these 128 (sticky).
            v = Extended.Round(false, (BigInteger)k.sig, k.exp - 16383 - 127, i.Mnemonic != Mnemonic.Fld1, 64, Rc(c), ref ignored, out _);
        }
        Push(c, v, 0, false);
    }

    // ---- arithmetic ----

    private static void Arith(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        var m = i.Mnemonic;
        var pop = m is Mnemonic.Faddp or Mnemonic.Fsubp or Mnemonic.Fsubrp or Mnemonic.Fmulp or Mnemonic.Fdivp or Mnemonic.Fdivrp;
        var dstIdx = i.OpCount == 2 ? StIndex(i.Op0Register) : 0;
        if (i.OpCount == 0) dstIdx = 1; // FADDP with no operands: ST(1) = ST(1) op ST(0)
        var flags = 0;
        Ext80 src;
        bool srcEmpty;
        if (i.OpCount == 0) { src = St(c, 0); srcEmpty = Empty(c, 0); }
        else src = Source(c, in i, ref flags, out srcEmpty);
        var dstEmpty = Empty(c, dstIdx);
        if (srcEmpty || dstEmpty)
        {
            if (!Underflow(c)) return;
            SetSt(c, dstIdx, Ext80.Indefinite);
            if (pop) Pop(c);
            return;
        }
        var dst = St(c, dstIdx);
        var (op, reverse) = m switch
        {
            Mnemonic.Fadd or Mnemonic.Faddp or Mnemonic.Fiadd => (Extended.Op.Add, false),
            Mnemonic.Fsub or Mnemonic.Fsubp or Mnemonic.Fisub => (Extended.Op.Sub, false),
            Mnemonic.Fsubr or Mnemonic.Fsubrp or Mnemonic.Fisubr => (Extended.Op.Sub, true),
            Mnemonic.Fmul or Mnemonic.Fmulp or Mnemonic.Fimul => (Extended.Op.Mul, false),
            Mnemonic.Fdiv or Mnemonic.Fdivp or Mnemonic.Fidiv => (Extended.Op.Div, false),
            _ => (Extended.Op.Div, true),
        };
        var r = reverse ? Extended.Arith(op, src, dst, Pc(c), Rc(c), ref flags, out var up) : Extended.Arith(op, dst, src, Pc(c), Rc(c), ref flags, out up);
        if (!Finish(c, flags, up)) return;
        SetSt(c, dstIdx, r);
        if (pop) Pop(c);
    }

    private static void Fsqrt(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        if (Empty(c, 0)) { if (Underflow(c)) SetSt(c, 0, Ext80.Indefinite); return; }
        var flags = 0;
        var r = Extended.Sqrt(St(c, 0), Pc(c), Rc(c), ref flags, out var up);
        if (Finish(c, flags, up)) SetSt(c, 0, r);
    }

    /// <summary>FRNDINT: to an integer under RC (PE when inexact).</summary>
    private static void Frndint(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        if (Empty(c, 0)) { if (Underflow(c)) SetSt(c, 0, Ext80.Indefinite); return; }
        var v = St(c, 0);
        var flags = 0;
        var u = Extended.Unpack(v, ref flags, out var bad);
        Ext80 r;
        var up = false;
        if (bad || u.IsNaN)
        {
            flags &= ~SoftFloat.DE;
            if (bad || u.Class == FloatClass.SNaN) flags |= SoftFloat.IE;
            r = bad ? Ext80.Indefinite : v.Quiet;
        }
        else if (u.Class != FloatClass.Finite || u.Exponent >= 0) r = v;
        else
        {
            var mag = (BigInteger)u.Significand;
            var sh = Math.Min(-u.Exponent, 200);
            var q = mag >> sh;
            var rem = mag - (q << sh);
            if (!rem.IsZero)
            {
                flags |= SoftFloat.PE;
                var half = BigInteger.One << (sh - 1);
                var inc = Rc(c) switch
                {
                    SoftFloat.RoundNearest => rem > half || (rem == half && !q.IsEven),
                    SoftFloat.RoundUp => !u.Negative,
                    SoftFloat.RoundDown => u.Negative,
                    _ => false,
                };
                if (inc) { q += 1; up = true; }
            }
            var ignored = 0;
            r = q.IsZero ? Ext80.Zero(u.Negative) : Extended.Round(u.Negative, q, 0, false, 64, 0, ref ignored, out _);
        }
        if (Finish(c, flags, up)) SetSt(c, 0, r);
    }

    /// <summary>FSCALE: ST(0) × 2^trunc(ST(1)), rounded under RC at full precision (PC does not apply).</summary>
    private static void Fscale(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        if (Empty(c, 0) || Empty(c, 1)) { if (Underflow(c)) SetSt(c, 0, Ext80.Indefinite); return; }
        var a = St(c, 0);
        var b = St(c, 1);
        var flags = 0;
        var ua = Extended.Unpack(a, ref flags, out var badA);
        var ub = Extended.Unpack(b, ref flags, out var badB);
        Ext80 r;
        var up = false;
        if (badA || badB || ua.IsNaN || ub.IsNaN)
        {
            flags &= ~SoftFloat.DE;
            var ignored = 0;
            r = Extended.Arith(Extended.Op.Add, a, b, 64, 0, ref ignored, out _);
            flags |= ignored & SoftFloat.IE;
        }
        else if (ub.Class == FloatClass.Infinity)
        {
            var invalid = ub.Negative ? ua.Class == FloatClass.Infinity : ua.Class == FloatClass.Zero;
            if (invalid) { flags = (flags & ~SoftFloat.DE) | SoftFloat.IE; r = Ext80.Indefinite; }
            else r = ub.Negative ? Ext80.Zero(ua.Negative) : ua.Class == FloatClass.Zero ? a : Ext80.Inf(ua.Negative);
        }
        else if (ua.Class != FloatClass.Finite) r = a;
        else
        {
            // trunc(ST(1)), clamped: anything past ±2^20 overflows or underflows every format.
            long n = 0;
            if (ub.Class == FloatClass.Finite)
            {
                var mag = ub.Exponent >= 0 ? (ub.Exponent > 30 ? 1L << 30 : (long)ub.Significand << Math.Min(ub.Exponent, 30))
                    : ub.Exponent <= -64 ? 0 : (long)(ub.Significand >> -ub.Exponent);
                n = Math.Clamp(ub.Negative ? -mag : mag, -(1 << 20), 1 << 20);
            }
            r = Extended.Round(ua.Negative, ua.Significand, ua.Exponent + (int)n, false, 64, Rc(c), ref flags, out up);
        }
        if (Finish(c, flags, up)) SetSt(c, 0, r);
    }

    /// <summary>
    /// FXTRACT: ST(0) becomes its unbiased exponent and the significand (exponent 0) is pushed. Known gap:
    /// after a stack underflow or overflow the host's C1 does not follow a rule we have identified.
    /// </summary>
    private static void Fxtract(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        if (Empty(c, 0)) { if (Underflow(c)) { SetSt(c, 0, Ext80.Indefinite); Push(c, Ext80.Indefinite, 0, false); } return; }
        if (!Empty(c, -1))
        {
            // Stack overflow; the host leaves C1 as it was.
            if (!Finish(c, SoftFloat.IE, (c.Fsw & FswBits.C1) != 0, stackFault: true)) return;
            SetSt(c, 0, Ext80.Indefinite);
            c.FpuTop--;
            SetSt(c, 0, Ext80.Indefinite);
            return;
        }
        var v = St(c, 0);
        var flags = 0;
        var u = Extended.Unpack(v, ref flags, out var bad);
        Ext80 exp, sig;
        if (bad || u.IsNaN)
        {
            flags &= ~SoftFloat.DE;
            if (bad || u.Class == FloatClass.SNaN) flags |= SoftFloat.IE;
            exp = sig = bad ? Ext80.Indefinite : v.Quiet;
        }
        else if (u.Class == FloatClass.Zero)
        {
            flags |= SoftFloat.ZE;
            exp = Ext80.Inf(true);
            sig = v;
        }
        else if (u.Class == FloatClass.Infinity)
        {
            exp = Ext80.Inf(false);
            sig = v;
        }
        else
        {
            var top = u.Exponent + (int)System.Numerics.BitOperations.Log2(u.Significand);
            exp = FromInt(top);
            var m = u.Significand << (63 - (int)System.Numerics.BitOperations.Log2(u.Significand));
            sig = new Ext80(m, (ushort)(0x3FFF | (u.Negative ? 0x8000 : 0)));
        }
        if (!Finish(c, flags, false)) return;
        SetSt(c, 0, exp);
        c.FpuTop--;
        SetSt(c, 0, sig);
    }

    private static void Fchs(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        if (Empty(c, 0)) { if (Underflow(c)) SetSt(c, 0, Ext80.Indefinite); return; }
        var v = St(c, 0);
        Finish(c, 0, false);
        SetSt(c, 0, new Ext80(v.Mant, (ushort)(v.SignExp ^ 0x8000)));
    }

    private static void Fabs(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        if (Empty(c, 0)) { if (Underflow(c)) SetSt(c, 0, Ext80.Indefinite); return; }
        var v = St(c, 0);
        Finish(c, 0, false);
        SetSt(c, 0, new Ext80(v.Mant, (ushort)(v.SignExp & 0x7FFF)));
    }

    /// <summary>FXCH: an empty register counts as the indefinite (IE + SF when masked).</summary>
    private static void Fxch(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        var idx = i.OpCount == 0 ? 1 : StIndex(i.GetOpRegister(i.OpCount - 1));
        var e0 = Empty(c, 0);
        var e1 = Empty(c, idx);
        if (e0 || e1) { if (!Underflow(c)) return; }
        else Finish(c, 0, false);
        var a = e0 ? Ext80.Indefinite : St(c, 0);
        var b = e1 ? Ext80.Indefinite : St(c, idx);
        SetSt(c, 0, b);
        SetSt(c, idx, a);
    }

    private static void Fcmov(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        var idx = StIndex(i.Op1Register);
        if (Empty(c, 0) || Empty(c, idx)) { if (Underflow(c)) SetSt(c, 0, Ext80.Indefinite); return; }
        // C1 is undefined without a fault: the host leaves it.
        var cc = i.Mnemonic switch
        {
            Mnemonic.Fcmovb => ConditionCode.b, Mnemonic.Fcmove => ConditionCode.e, Mnemonic.Fcmovbe => ConditionCode.be,
            Mnemonic.Fcmovu => ConditionCode.p, Mnemonic.Fcmovnb => ConditionCode.ae, Mnemonic.Fcmovne => ConditionCode.ne,
            Mnemonic.Fcmovnbe => ConditionCode.a, _ => ConditionCode.np,
        };
        if (c.Condition(cc)) SetSt(c, 0, St(c, idx));
    }

    // ---- compares ----

    /// <summary>Compares ST(0) with a source: -1, 0, 1, or null (unordered); IE per the signalling rule.</summary>
    private static int? CompareValues(Ext80 a, Ext80 b, bool signalQuiet, ref int flags)
    {
        var ua = Extended.Unpack(a, ref flags, out var badA);
        var ub = Extended.Unpack(b, ref flags, out var badB);
        if (badA || badB || ua.IsNaN || ub.IsNaN)
        {
            flags &= ~SoftFloat.DE;
            if (badA || badB || ua.Class == FloatClass.SNaN || ub.Class == FloatClass.SNaN || signalQuiet) flags |= SoftFloat.IE;
            return null;
        }
        return SoftFloat.Compare(ua, ub);
    }

    private static void Fcom(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        var m = i.Mnemonic;
        var pops = m is Mnemonic.Fcompp or Mnemonic.Fucompp ? 2 : m is Mnemonic.Fcomp or Mnemonic.Fucomp or Mnemonic.Ficomp ? 1 : 0;
        var signalQuiet = m is not (Mnemonic.Fucom or Mnemonic.Fucomp or Mnemonic.Fucompp);
        var flags = 0;
        Ext80 src;
        bool srcEmpty;
        if (m == Mnemonic.Ftst) { src = Ext80.Zero(false); srcEmpty = false; }
        else if (i.OpCount == 0) { src = St(c, 1); srcEmpty = Empty(c, 1); }
        else src = Source(c, in i, ref flags, out srcEmpty);
        int? r;
        var stackFault = srcEmpty || Empty(c, 0);
        if (stackFault) { flags = SoftFloat.IE; r = null; }
        else r = CompareValues(St(c, 0), src, signalQuiet, ref flags);
        var fsw = (ushort)(c.Fsw & ~CondMask);
        fsw |= r switch
        {
            null => (ushort)(FswBits.C3 | FswBits.C2 | FswBits.C0),
            < 0 => FswBits.C0,
            0 => FswBits.C3,
            _ => (ushort)0,
        };
        var oldFsw = c.Fsw;
        if (!Finish(c, flags, false, stackFault)) { c.Fsw = (ushort)((c.Fsw & ~CondMask) | (oldFsw & CondMask & ~FswBits.C1)); return; }
        c.Fsw = (ushort)((c.Fsw & ~CondMask) | (fsw & CondMask));
        for (var k = 0; k < pops; k++) Pop(c);
    }

    private static void Fcomi(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        var m = i.Mnemonic;
        var idx = StIndex(i.Op1Register);
        var flags = 0;
        int? r;
        var stackFault = Empty(c, 0) || Empty(c, idx);
        if (stackFault) { flags = SoftFloat.IE; r = null; }
        else r = CompareValues(St(c, 0), St(c, idx), m is Mnemonic.Fcomi or Mnemonic.Fcomip, ref flags);
        // C1 is cleared only by a stack fault; otherwise the host leaves it.
        if (!Finish(c, flags, !stackFault && (c.Fsw & FswBits.C1) != 0, stackFault)) return;
        var fl = c.GetFlags() & ~RFlags.Arith;
        fl |= r switch
        {
            null => RFlags.ZF | RFlags.PF | RFlags.CF,
            < 0 => RFlags.CF,
            0 => RFlags.ZF,
            _ => 0UL,
        };
        c.SetFlags(fl);
        if (m is Mnemonic.Fcomip or Mnemonic.Fucomip) Pop(c);
    }

    /// <summary>FXAM: C3,C2,C0 = class (unsupported, NaN, normal, infinity, zero, empty, denormal); C1 = sign.</summary>
    private static void Fxam(SoftwareCpu c, in Instruction i)
    {
        c.CheckX87Waiting();
        var v = St(c, 0);
        ushort cls;
        if (Empty(c, 0)) cls = FswBits.C3 | FswBits.C0;
        else
        {
            var e = v.Exponent;
            var integer = (v.Mant >> 63) != 0;
            if (e == 0x7FFF) cls = !integer ? (ushort)0 : (v.Mant << 1) == 0 ? (ushort)(FswBits.C2 | FswBits.C0) : FswBits.C0;
            else if (e == 0) cls = v.Mant == 0 ? FswBits.C3 : (ushort)(FswBits.C3 | FswBits.C2);
            else cls = integer ? FswBits.C2 : (ushort)0;
        }
        if (v.Negative) cls |= FswBits.C1;
        c.Fsw = (ushort)((c.Fsw & ~CondMask) | cls);
    }
}
