using System.Numerics;

namespace Actorvisor.Kernel.Cpu.Float;

/// <summary>A binary floating-point format: significand precision (with the leading bit) and exponent width.</summary>
internal readonly record struct FloatFormat(int Precision, int ExponentBits)
{
    public static readonly FloatFormat Single = new(24, 8);
    public static readonly FloatFormat Double = new(53, 11);

    public int Bias => (1 << (ExponentBits - 1)) - 1;
    public int MaxBiased => (1 << ExponentBits) - 1;
    /// <summary>Exponent of the least significant significand bit of the smallest normal (and every denormal).</summary>
    public int MinLsbExponent => 1 - Bias - (Precision - 1);
    public int TotalBits => ExponentBits + Precision;
    public ulong SignBit => 1UL << (TotalBits - 1);
    public ulong FractionMask => (1UL << (Precision - 1)) - 1;
    public ulong QuietBit => 1UL << (Precision - 2);
    /// <summary>The x86 default NaN ("QNaN floating-point indefinite"): sign set, quiet bit set, payload zero.</summary>
    public ulong DefaultNaN => SignBit | ((ulong)MaxBiased << (Precision - 1)) | QuietBit;
    public ulong MaxFinite => ((ulong)(MaxBiased - 1) << (Precision - 1)) | FractionMask;
    public ulong Infinity => (ulong)MaxBiased << (Precision - 1);
}

internal enum FloatClass { Zero, Finite, Infinity, QNaN, SNaN }

/// <summary>An unpacked operand: value = (-1)^Negative × Significand × 2^Exponent.</summary>
internal readonly record struct Unpacked(FloatClass Class, bool Negative, ulong Significand, int Exponent, bool Denormal)
{
    public bool IsNaN => Class is FloatClass.QNaN or FloatClass.SNaN;
}

/// <summary>
/// Correctly rounded IEEE 754 arithmetic in software for the SSE (and later x87) instructions, so every
/// MXCSR rounding mode, DAZ/FTZ and all five exception flags come out as the hardware's: each operation
/// forms its exact result (BigInteger significand, or a truncated one plus a sticky bit for division and
/// square root) and <see cref="Round"/> rounds it once. Tininess is detected after rounding, as on x86.
/// Slower than host floating point, but exact; the flags are what the guest sees.
/// </summary>
internal static class SoftFloat
{
    public const int RoundNearest = 0, RoundDown = 1, RoundUp = 2, RoundZero = 3;

    /// <summary>Exception flags in MXCSR/FSW bit order.</summary>
    public const int IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32;

    public static Unpacked Unpack(FloatFormat f, ulong bits, bool daz, ref int flags)
    {
        var neg = (bits & f.SignBit) != 0;
        var biased = (int)((bits >> (f.Precision - 1)) & (ulong)f.MaxBiased);
        var frac = bits & f.FractionMask;
        if (biased == f.MaxBiased)
        {
            if (frac == 0) return new Unpacked(FloatClass.Infinity, neg, 0, 0, false);
            return new Unpacked((frac & f.QuietBit) != 0 ? FloatClass.QNaN : FloatClass.SNaN, neg, frac, 0, false);
        }
        if (biased == 0)
        {
            if (frac == 0) return new Unpacked(FloatClass.Zero, neg, 0, 0, false);
            if (daz) return new Unpacked(FloatClass.Zero, neg, 0, 0, true);
            flags |= DE;
            return new Unpacked(FloatClass.Finite, neg, frac, f.MinLsbExponent, true);
        }
        return new Unpacked(FloatClass.Finite, neg, frac | (1UL << (f.Precision - 1)), biased - f.Bias - (f.Precision - 1), false);
    }

    public static ulong Zero(FloatFormat f, bool neg) => neg ? f.SignBit : 0;
    public static ulong Inf(FloatFormat f, bool neg) => f.Infinity | (neg ? f.SignBit : 0);

    /// <summary>
    /// Rounds ±<paramref name="mag"/>×2^<paramref name="exp"/> (plus a sticky remainder below its last bit)
    /// to the format under rounding mode <paramref name="rc"/>. <paramref name="ftz"/> flushes tiny results
    /// to zero (SSE's FTZ, with underflow masked).
    /// </summary>
    public static ulong Round(FloatFormat f, bool neg, BigInteger mag, int exp, bool sticky, int rc, bool ftz, ref int flags)
    {
        if (mag.IsZero && !sticky) return Zero(f, neg);
        var p = f.Precision;
        // Sticky bits below the last bit: make room for them as one extra low bit.
        if (sticky) { mag = (mag << 2) | 1; exp -= 2; }
        var n = (int)mag.GetBitLength();
        // Rounding with unbounded exponent decides tininess (x86 detects it after rounding).
        var lsbUnbounded = exp + n - p;
        var (qU, eU, _) = RoundAt(mag, exp, lsbUnbounded, neg, rc, p);
        var tiny = eU + (int)qU.GetBitLength() - 1 < 1 - f.Bias;
        var lsb = Math.Max(lsbUnbounded, f.MinLsbExponent);
        var (q, e, inexact) = RoundAt(mag, exp, lsb, neg, rc, p);
        if (tiny && ftz)
        {
            flags |= UE | PE;
            return Zero(f, neg);
        }
        if (inexact) flags |= PE;
        if (tiny && inexact) flags |= UE;
        if (q.IsZero) return Zero(f, neg);
        var top = e + (int)q.GetBitLength() - 1; // unbiased exponent of the leading bit
        if (top > f.Bias)
        {
            flags |= OE | PE;
            var toInf = rc == RoundNearest || (rc == RoundUp && !neg) || (rc == RoundDown && neg);
            return toInf ? Inf(f, neg) : f.MaxFinite | (neg ? f.SignBit : 0);
        }
        var sig = (ulong)q;
        var biased = sig >> (p - 1) == 0 ? 0UL : (ulong)(top + f.Bias);
        return (neg ? f.SignBit : 0) | (biased << (p - 1)) | (sig & f.FractionMask);
    }

    /// <summary>Rounds the magnitude to a multiple of 2^lsb; a carry past <paramref name="p"/> bits renormalises.</summary>
    private static (BigInteger Q, int E, bool Inexact) RoundAt(BigInteger mag, int exp, int lsb, bool neg, int rc, int p)
    {
        var shift = lsb - exp;
        if (shift <= 0) return (mag << -shift, lsb, false);
        var q = mag >> shift;
        var rem = mag - (q << shift);
        if (rem.IsZero) return (q, lsb, false);
        var half = BigInteger.One << (shift - 1);
        var up = rc switch
        {
            RoundNearest => rem > half || (rem == half && !q.IsEven),
            RoundUp => !neg,
            RoundDown => neg,
            _ => false,
        };
        if (up)
        {
            q += 1;
            if (q.GetBitLength() > p) { q >>= 1; lsb++; }
        }
        return (q, lsb, true);
    }

    /// <summary>The NaN result for one or two operands per SSE rules: the first NaN operand, quieted; IE for an SNaN.</summary>
    public static ulong PropagateNaN(FloatFormat f, ulong a, Unpacked ua, ulong b, Unpacked ub, ref int flags)
    {
        if (ua.Class == FloatClass.SNaN || ub.Class == FloatClass.SNaN) flags |= IE;
        return (ua.IsNaN ? a : b) | f.QuietBit;
    }

    public static ulong Add(FloatFormat f, ulong a, ulong b, bool subtract, int rc, bool daz, bool ftz, ref int flags)
    {
        var ua = Unpack(f, a, daz, ref flags);
        var ub = Unpack(f, b, daz, ref flags);
        if (ua.IsNaN || ub.IsNaN) return PropagateNaN(f, a, ua, b, ub, ref flags);
        var nb = ub.Negative ^ subtract;
        if (ua.Class == FloatClass.Infinity || ub.Class == FloatClass.Infinity)
        {
            if (ua.Class == FloatClass.Infinity && ub.Class == FloatClass.Infinity && ua.Negative != nb) { flags |= IE; return f.DefaultNaN; }
            return ua.Class == FloatClass.Infinity ? Inf(f, ua.Negative) : Inf(f, nb);
        }
        if (ua.Class == FloatClass.Zero && ub.Class == FloatClass.Zero)
            return Zero(f, ua.Negative == nb ? ua.Negative : rc == RoundDown);
        var e = Math.Min(ua.Class == FloatClass.Zero ? int.MaxValue : ua.Exponent, ub.Class == FloatClass.Zero ? int.MaxValue : ub.Exponent);
        var va = ua.Class == FloatClass.Zero ? BigInteger.Zero : (BigInteger)ua.Significand << (ua.Exponent - e);
        var vb = ub.Class == FloatClass.Zero ? BigInteger.Zero : (BigInteger)ub.Significand << (ub.Exponent - e);
        var sum = (ua.Negative ? -va : va) + (nb ? -vb : vb);
        if (sum.IsZero) return Zero(f, rc == RoundDown);
        return Round(f, sum.Sign < 0, BigInteger.Abs(sum), e, false, rc, ftz, ref flags);
    }

    public static ulong Mul(FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int flags)
    {
        var ua = Unpack(f, a, daz, ref flags);
        var ub = Unpack(f, b, daz, ref flags);
        if (ua.IsNaN || ub.IsNaN) return PropagateNaN(f, a, ua, b, ub, ref flags);
        var neg = ua.Negative ^ ub.Negative;
        if (ua.Class == FloatClass.Infinity || ub.Class == FloatClass.Infinity)
        {
            if (ua.Class == FloatClass.Zero || ub.Class == FloatClass.Zero) { flags |= IE; return f.DefaultNaN; }
            return Inf(f, neg);
        }
        if (ua.Class == FloatClass.Zero || ub.Class == FloatClass.Zero) return Zero(f, neg);
        return Round(f, neg, (BigInteger)ua.Significand * ub.Significand, ua.Exponent + ub.Exponent, false, rc, ftz, ref flags);
    }

    public static ulong Div(FloatFormat f, ulong a, ulong b, int rc, bool daz, bool ftz, ref int flags)
    {
        var ua = Unpack(f, a, daz, ref flags);
        var ub = Unpack(f, b, daz, ref flags);
        if (ua.IsNaN || ub.IsNaN) return PropagateNaN(f, a, ua, b, ub, ref flags);
        var neg = ua.Negative ^ ub.Negative;
        if (ua.Class == FloatClass.Infinity)
        {
            if (ub.Class == FloatClass.Infinity) { flags |= IE; return f.DefaultNaN; }
            return Inf(f, neg);
        }
        if (ub.Class == FloatClass.Infinity) return Zero(f, neg);
        if (ub.Class == FloatClass.Zero)
        {
            if (ua.Class == FloatClass.Zero) { flags |= IE; return f.DefaultNaN; }
            flags |= ZE;
            return Inf(f, neg);
        }
        if (ua.Class == FloatClass.Zero) return Zero(f, neg);
        var k = f.Precision + 3 + 64;
        var num = (BigInteger)ua.Significand << k;
        var q = BigInteger.DivRem(num, ub.Significand, out var rem);
        return Round(f, neg, q, ua.Exponent - ub.Exponent - k, !rem.IsZero, rc, ftz, ref flags);
    }

    public static ulong Sqrt(FloatFormat f, ulong a, int rc, bool daz, bool ftz, ref int flags)
    {
        var ua = Unpack(f, a, daz, ref flags);
        if (ua.IsNaN) return PropagateNaN(f, a, ua, a, ua, ref flags);
        if (ua.Class == FloatClass.Zero) return Zero(f, ua.Negative);
        if (ua.Negative) { flags |= IE; return f.DefaultNaN; }
        if (ua.Class == FloatClass.Infinity) return Inf(f, false);
        var shift = 2 * f.Precision + 8;
        if (((ua.Exponent - shift) & 1) != 0) shift++;
        var m = (BigInteger)ua.Significand << shift;
        var r = ISqrt(m);
        return Round(f, false, r, (ua.Exponent - shift) / 2, r * r != m, rc, ftz, ref flags);
    }

    private static BigInteger ISqrt(BigInteger n)
    {
        if (n.IsZero) return 0;
        var x = BigInteger.One << (int)((n.GetBitLength() + 1) / 2);
        while (true)
        {
            var y = (x + n / x) >> 1;
            if (y >= x) return x;
            x = y;
        }
    }

    /// <summary>Converts between formats (CVTSS2SD, CVTSD2SS): NaNs keep their payload's top bits, quieted.</summary>
    public static ulong Convert(FloatFormat from, FloatFormat to, ulong a, int rc, bool daz, bool ftz, ref int flags)
    {
        var ua = Unpack(from, a, daz, ref flags);
        switch (ua.Class)
        {
            case FloatClass.QNaN or FloatClass.SNaN:
                if (ua.Class == FloatClass.SNaN) flags |= IE;
                var payload = to.Precision >= from.Precision
                    ? ua.Significand << (to.Precision - from.Precision)
                    : ua.Significand >> (from.Precision - to.Precision);
                return (ua.Negative ? to.SignBit : 0) | to.Infinity | to.QuietBit | (payload & to.FractionMask);
            case FloatClass.Infinity: return Inf(to, ua.Negative);
            case FloatClass.Zero: return Zero(to, ua.Negative);
        }
        return Round(to, ua.Negative, ua.Significand, ua.Exponent, false, rc, ftz, ref flags);
    }

    /// <summary>Signed integer to float, rounded per <paramref name="rc"/> (PE when inexact).</summary>
    public static ulong FromInt(FloatFormat f, long v, int rc, ref int flags)
    {
        if (v == 0) return 0;
        var neg = v < 0;
        var mag = neg ? (BigInteger)(-(Int128)v) : v;
        return Round(f, neg, mag, 0, false, rc, false, ref flags);
    }

    /// <summary>
    /// Float to a signed integer of <paramref name="bits"/> bits, rounded per <paramref name="rc"/>. NaN or
    /// out of range gives the integer indefinite (only the sign bit set) and IE; an inexact result sets PE.
    /// </summary>
    public static long ToInt(FloatFormat f, ulong a, int bits, int rc, bool daz, ref int flags)
    {
        var indefinite = bits == 64 ? long.MinValue : int.MinValue;
        var ua = Unpack(f, a, daz, ref flags);
        if (ua.IsNaN || ua.Class == FloatClass.Infinity) { flags |= IE; return indefinite; }
        if (ua.Class == FloatClass.Zero) return 0;
        BigInteger q;
        if (ua.Exponent >= 0) q = (BigInteger)ua.Significand << Math.Min(ua.Exponent, 200);
        else
        {
            var mag = (BigInteger)ua.Significand;
            var shift = -ua.Exponent;
            q = mag >> shift;
            var rem = mag - (q << shift);
            if (!rem.IsZero)
            {
                var half = BigInteger.One << (shift - 1);
                var up = rc switch
                {
                    RoundNearest => rem > half || (rem == half && !q.IsEven),
                    RoundUp => !ua.Negative,
                    RoundDown => ua.Negative,
                    _ => false,
                };
                if (up) q += 1;
                flags |= PE;
            }
        }
        var signed = ua.Negative ? -q : q;
        var min = -(BigInteger.One << (bits - 1));
        var max = (BigInteger.One << (bits - 1)) - 1;
        if (signed < min || signed > max)
        {
            flags &= ~PE;
            flags |= IE;
            return indefinite;
        }
        return (long)signed;
    }

    /// <summary>Ordered comparison: -1, 0, 1, or null when unordered. Zeros compare equal whatever their signs.</summary>
    public static int? Compare(Unpacked a, Unpacked b)
    {
        if (a.IsNaN || b.IsNaN) return null;
        static BigInteger Key(Unpacked u, int e) => u.Class switch
        {
            FloatClass.Zero => BigInteger.Zero,
            _ => (u.Negative ? -1 : 1) * ((BigInteger)u.Significand << (u.Exponent - e)),
        };
        if (a.Class == FloatClass.Infinity || b.Class == FloatClass.Infinity)
        {
            var ka = a.Class == FloatClass.Infinity ? (a.Negative ? -1 : 1) : 0;
            var kb = b.Class == FloatClass.Infinity ? (b.Negative ? -1 : 1) : 0;
            if (ka != kb) return ka.CompareTo(kb);
            if (ka != 0) return 0;
        }
        var e = Math.Min(a.Class == FloatClass.Finite ? a.Exponent : int.MaxValue, b.Class == FloatClass.Finite ? b.Exponent : int.MaxValue);
        if (e == int.MaxValue) return 0;
        return Key(a, e).CompareTo(Key(b, e));
    }
}
