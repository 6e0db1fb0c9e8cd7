using System.Numerics;

namespace Actorvisor.Kernel.Cpu.Float;

/// <summary>An x87 80-bit extended value: explicit 64-bit significand and sign/15-bit exponent.</summary>
internal readonly record struct Ext80(ulong Mant, ushort SignExp)
{
    public bool Negative => (SignExp & 0x8000) != 0;
    public int Exponent => SignExp & 0x7FFF;
    /// <summary>The "real indefinite" QNaN that masked invalid operations return.</summary>
    public static readonly Ext80 Indefinite = new(0xC000_0000_0000_0000, 0xFFFF);
    public static Ext80 Zero(bool neg) => new(0, (ushort)(neg ? 0x8000 : 0));
    public static Ext80 Inf(bool neg) => new(0x8000_0000_0000_0000, (ushort)(neg ? 0xFFFF : 0x7FFF));
    public bool IsNaN => Exponent == 0x7FFF && (Mant << 1) != 0;
    public Ext80 Quiet => new(Mant | 0x4000_0000_0000_0000, SignExp);
}

/// <summary>
/// Extended-precision arithmetic for the x87 unit, built like <see cref="SoftFloat"/>: exact result, one
/// rounding to the precision-control width (24, 53 or 64 bits) with the extended exponent range, under
/// FCW.RC. <c>roundedUp</c> reports a magnitude increase (the x87's C1).
/// </summary>
internal static class Extended
{
    private const int Bias = 16383;
    private const int MinLsb = 1 - Bias - 63;

    /// <summary>Unpacks; unnormals, pseudo-NaNs and pseudo-infinities are unsupported (IE, like an SNaN).</summary>
    public static Unpacked Unpack(Ext80 v, ref int flags, out bool unsupported)
    {
        unsupported = false;
        var neg = v.Negative;
        var e = v.Exponent;
        var m = v.Mant;
        if (e == 0x7FFF)
        {
            if ((m >> 63) == 0) { unsupported = true; return new Unpacked(FloatClass.SNaN, neg, m, 0, false); }
            if ((m << 1) == 0) return new Unpacked(FloatClass.Infinity, neg, 0, 0, false);
            return new Unpacked((m & 0x4000_0000_0000_0000) != 0 ? FloatClass.QNaN : FloatClass.SNaN, neg, m, 0, false);
        }
        if (e == 0)
        {
            if (m == 0) return new Unpacked(FloatClass.Zero, neg, 0, 0, false);
            flags |= SoftFloat.DE;
            return new Unpacked(FloatClass.Finite, neg, m, MinLsb, true);
        }
        if ((m >> 63) == 0) { unsupported = true; return new Unpacked(FloatClass.SNaN, neg, m, 0, false); }
        return new Unpacked(FloatClass.Finite, neg, m, e - Bias - 63, false);
    }

    public static Ext80 Round(bool neg, BigInteger mag, int exp, bool sticky, int p, int rc, ref int flags, out bool roundedUp)
    {
        roundedUp = false;
        if (mag.IsZero && !sticky) return Ext80.Zero(neg);
        if (sticky) { mag = (mag << 2) | 1; exp -= 2; }
        var n = (int)mag.GetBitLength();
        var lsbU = exp + n - p;
        var (qU, eU, _, _) = RoundAt(mag, exp, lsbU, neg, rc, p);
        var tiny = eU + (int)qU.GetBitLength() - 1 < 1 - Bias;
        // A denormal result keeps the LSB a p-bit significand has at the minimum exponent (as the host does).
        var lsb = Math.Max(lsbU, MinLsb + (64 - p));
        var (q, e, inexact, up) = RoundAt(mag, exp, lsb, neg, rc, p);
        roundedUp = up;
        if (inexact) flags |= SoftFloat.PE;
        if (tiny && inexact) flags |= SoftFloat.UE;
        if (q.IsZero) return Ext80.Zero(neg);
        var top = e + (int)q.GetBitLength() - 1;
        if (top > Bias)
        {
            flags |= SoftFloat.OE | SoftFloat.PE;
            var toInf = rc == SoftFloat.RoundNearest || (rc == SoftFloat.RoundUp && !neg) || (rc == SoftFloat.RoundDown && neg);
            roundedUp = toInf;
            if (toInf) return Ext80.Inf(neg);
            var max = ulong.MaxValue << (64 - p);
            return new Ext80(max, (ushort)(0x7FFE | (neg ? 0x8000 : 0)));
        }
        // Left-align the significand in 64 bits.
        var biased = top + Bias;
        ulong sig;
        if (biased <= 0) { sig = (ulong)(q << (e - MinLsb)); biased = 0; } // denormal: the LSB is at MinLsb
        else sig = (ulong)(q << (63 - (top - e)));
        return new Ext80(sig, (ushort)(biased | (neg ? 0x8000 : 0)));
    }

    private static (BigInteger Q, int E, bool Inexact, bool Up) RoundAt(BigInteger mag, int exp, int lsb, bool neg, int rc, int p)
    {
        var shift = lsb - exp;
        if (shift <= 0) return (mag << -shift, lsb, false, false);
        var q = mag >> shift;
        var rem = mag - (q << shift);
        if (rem.IsZero) return (q, lsb, false, false);
        var half = BigInteger.One << (shift - 1);
        var up = rc switch
        {
            SoftFloat.RoundNearest => rem > half || (rem == half && !q.IsEven),
            SoftFloat.RoundUp => !neg,
            SoftFloat.RoundDown => neg,
            _ => false,
        };
        if (up)
        {
            q += 1;
            if (q.GetBitLength() > p) { q >>= 1; lsb++; }
        }
        return (q, lsb, true, up);
    }

    /// <summary>x87 NaN rule: with two NaNs the one with the larger significand (quieted); IE for an SNaN or unsupported operand.</summary>
    private static Ext80 NaNResult(Ext80 a, Unpacked ua, bool badA, Ext80 b, Unpacked ub, bool badB, ref int flags)
    {
        if (badA || badB) { flags |= SoftFloat.IE; return Ext80.Indefinite; }
        if (ua.Class == FloatClass.SNaN || ub.Class == FloatClass.SNaN) flags |= SoftFloat.IE;
        if (ua.IsNaN && ub.IsNaN && ua.Class != ub.Class) return (ua.Class == FloatClass.QNaN ? a : b).Quiet;
        if (ua.IsNaN && ub.IsNaN)
        {
            var ma = a.Mant & 0x3FFF_FFFF_FFFF_FFFF;
            var mb = b.Mant & 0x3FFF_FFFF_FFFF_FFFF;
            if (ma != mb) return (ma > mb ? a : b).Quiet;
            return (a.Negative ? b : a).Quiet;
        }
        return (ua.IsNaN ? a : b).Quiet;
    }

    public enum Op { Add, Sub, Mul, Div }

    public static Ext80 Arith(Op op, Ext80 a, Ext80 b, int p, int rc, ref int flags, out bool roundedUp)
    {
        roundedUp = false;
        var ua = Unpack(a, ref flags, out var badA);
        var ub = Unpack(b, ref flags, out var badB);
        if (ua.IsNaN || ub.IsNaN || badA || badB)
        {
            flags &= ~SoftFloat.DE;
            return NaNResult(a, ua, badA, b, ub, badB, ref flags);
        }
        switch (op)
        {
            case Op.Add or Op.Sub:
            {
                var nb = ub.Negative ^ (op == Op.Sub);
                if (ua.Class == FloatClass.Infinity || ub.Class == FloatClass.Infinity)
                {
                    if (ua.Class == FloatClass.Infinity && ub.Class == FloatClass.Infinity && ua.Negative != nb) return Invalid(ref flags);
                    return ua.Class == FloatClass.Infinity ? Ext80.Inf(ua.Negative) : Ext80.Inf(nb);
                }
                if (ua.Class == FloatClass.Zero && ub.Class == FloatClass.Zero)
                    return Ext80.Zero(ua.Negative == nb ? ua.Negative : rc == SoftFloat.RoundDown);
                var e = Math.Min(ua.Class == FloatClass.Zero ? int.MaxValue : ua.Exponent, ub.Class == FloatClass.Zero ? int.MaxValue : ub.Exponent);
                var va = ua.Class == FloatClass.Zero ? BigInteger.Zero : (BigInteger)ua.Significand << (ua.Exponent - e);
                var vb = ub.Class == FloatClass.Zero ? BigInteger.Zero : (BigInteger)ub.Significand << (ub.Exponent - e);
                var sum = (ua.Negative ? -va : va) + (nb ? -vb : vb);
                if (sum.IsZero) return Ext80.Zero(rc == SoftFloat.RoundDown);
                return Round(sum.Sign < 0, BigInteger.Abs(sum), e, false, p, rc, ref flags, out roundedUp);
            }
            case Op.Mul:
            {
                var neg = ua.Negative ^ ub.Negative;
                if (ua.Class == FloatClass.Infinity || ub.Class == FloatClass.Infinity)
                {
                    if (ua.Class == FloatClass.Zero || ub.Class == FloatClass.Zero) return Invalid(ref flags);
                    return Ext80.Inf(neg);
                }
                if (ua.Class == FloatClass.Zero || ub.Class == FloatClass.Zero) return Ext80.Zero(neg);
                return Round(neg, (BigInteger)ua.Significand * ub.Significand, ua.Exponent + ub.Exponent, false, p, rc, ref flags, out roundedUp);
            }
            default:
            {
                var neg = ua.Negative ^ ub.Negative;
                if (ua.Class == FloatClass.Infinity)
                    return ub.Class == FloatClass.Infinity ? Invalid(ref flags) : Ext80.Inf(neg);
                if (ub.Class == FloatClass.Infinity) return Ext80.Zero(neg);
                if (ub.Class == FloatClass.Zero)
                {
                    if (ua.Class == FloatClass.Zero) return Invalid(ref flags);
                    flags &= ~SoftFloat.DE;
                    flags |= SoftFloat.ZE;
                    return Ext80.Inf(neg);
                }
                if (ua.Class == FloatClass.Zero) return Ext80.Zero(neg);
                const int k = 64 + 3 + 64;
                var q = BigInteger.DivRem((BigInteger)ua.Significand << k, ub.Significand, out var rem);
                return Round(neg, q, ua.Exponent - ub.Exponent - k, !rem.IsZero, p, rc, ref flags, out roundedUp);
            }
        }
    }

    private static Ext80 Invalid(ref int flags)
    {
        flags &= ~SoftFloat.DE;
        flags |= SoftFloat.IE;
        return Ext80.Indefinite;
    }

    public static Ext80 Sqrt(Ext80 a, int p, int rc, ref int flags, out bool roundedUp)
    {
        roundedUp = false;
        var ua = Unpack(a, ref flags, out var bad);
        if (ua.IsNaN || bad) { flags &= ~SoftFloat.DE; return NaNResult(a, ua, bad, a, ua, bad, ref flags); }
        if (ua.Class == FloatClass.Zero) return a;
        if (ua.Negative) return Invalid(ref flags);
        if (ua.Class == FloatClass.Infinity) return a;
        var shift = 2 * 64 + 8;
        if (((ua.Exponent - shift) & 1) != 0) shift++;
        var m = (BigInteger)ua.Significand << shift;
        var r = ISqrt(m);
        return Round(false, r, (ua.Exponent - shift) / 2, r * r != m, p, rc, ref flags, out roundedUp);
    }

    private static BigInteger ISqrt(BigInteger n)
    {
        var x = BigInteger.One << (int)((n.GetBitLength() + 1) / 2);
        while (true)
        {
            var y = (x + n / x) >> 1;
            if (y >= x) return x;
            x = y;
        }
    }

    /// <summary>Loads a single or double exactly (FLD m32/m64): SNaN → IE and quieted; denormal → DE.</summary>
    public static Ext80 FromFormat(FloatFormat f, ulong bits, ref int flags)
    {
        var u = SoftFloat.Unpack(f, bits, false, ref flags);
        switch (u.Class)
        {
            case FloatClass.Zero: return Ext80.Zero(u.Negative);
            case FloatClass.Infinity: return Ext80.Inf(u.Negative);
            case FloatClass.QNaN or FloatClass.SNaN:
                if (u.Class == FloatClass.SNaN) flags |= SoftFloat.IE;
                return new Ext80(0xC000_0000_0000_0000 | (u.Significand << (64 - f.Precision + 0)), (ushort)(0x7FFF | (u.Negative ? 0x8000 : 0)));
        }
        var ignored = 0;
        return Round(u.Negative, u.Significand, u.Exponent, false, 64, 0, ref ignored, out _);
    }

    /// <summary>Stores to a single or double (FST m32/m64), rounded under RC.</summary>
    public static ulong ToFormat(FloatFormat f, Ext80 v, int rc, ref int flags, out bool roundedUp)
    {
        roundedUp = false;
        var u = Unpack(v, ref flags, out var bad);
        if (bad) { flags |= SoftFloat.IE; return f.DefaultNaN; }
        switch (u.Class)
        {
            case FloatClass.Zero: return SoftFloat.Zero(f, u.Negative);
            case FloatClass.Infinity: return SoftFloat.Inf(f, u.Negative);
            case FloatClass.QNaN or FloatClass.SNaN:
                flags &= ~SoftFloat.DE;
                if (u.Class == FloatClass.SNaN) flags |= SoftFloat.IE;
                return (u.Negative ? f.SignBit : 0) | f.Infinity | f.QuietBit | ((v.Mant >> (64 - f.Precision)) & f.FractionMask);
        }
        // A denormal register stored to memory is not a denormal operand (the host reports no DE).
        flags &= ~SoftFloat.DE;
        var r = SoftFloat.Round(f, u.Negative, u.Significand, u.Exponent, false, rc, false, ref flags);
        // Rounded up when the stored magnitude exceeds the exact one.
        var back = 0;
        var stored = FromFormat(f, r, ref back);
        var uc = Unpack(stored, ref back, out _);
        var cmp = SoftFloat.Compare(uc with { Negative = false }, u with { Negative = false });
        roundedUp = cmp > 0;
        return r;
    }
}
