using System.Runtime.Intrinsics;
using Iced.Intel;
using static Actorvisor.Kernel.Cpu.Instructions.Simd;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// MMX and SSE2 packed-integer instructions (and the bitwise/shuffle SSE ones that are integer work):
/// add/subtract (wrapping and saturating), compare, min/max, multiply, average, SAD, logic, shifts,
/// shuffles, unpacks, packs, PEXTRW/PINSRW. The 64-bit MMX forms run on the low half of a 128-bit value
/// whose high half is zero; the few whose layout differs (packs, high unpacks) say so.
/// </summary>
internal static unsafe class SseInteger
{
    public static void Register(Dispatch.HandlerTable t)
    {
        Set(t, Mnemonic.Paddb, &Paddb); Set(t, Mnemonic.Paddw, &Paddw); Set(t, Mnemonic.Paddd, &Paddd); Set(t, Mnemonic.Paddq, &Paddq);
        Set(t, Mnemonic.Psubb, &Psubb); Set(t, Mnemonic.Psubw, &Psubw); Set(t, Mnemonic.Psubd, &Psubd); Set(t, Mnemonic.Psubq, &Psubq);
        Set(t, Mnemonic.Paddsb, &Paddsb); Set(t, Mnemonic.Paddsw, &Paddsw); Set(t, Mnemonic.Paddusb, &Paddusb); Set(t, Mnemonic.Paddusw, &Paddusw);
        Set(t, Mnemonic.Psubsb, &Psubsb); Set(t, Mnemonic.Psubsw, &Psubsw); Set(t, Mnemonic.Psubusb, &Psubusb); Set(t, Mnemonic.Psubusw, &Psubusw);
        Set(t, Mnemonic.Pand, &And); Set(t, Mnemonic.Andps, &And); Set(t, Mnemonic.Andpd, &And);
        Set(t, Mnemonic.Pandn, &AndNot); Set(t, Mnemonic.Andnps, &AndNot); Set(t, Mnemonic.Andnpd, &AndNot);
        Set(t, Mnemonic.Por, &Or); Set(t, Mnemonic.Orps, &Or); Set(t, Mnemonic.Orpd, &Or);
        Set(t, Mnemonic.Pxor, &Xor); Set(t, Mnemonic.Xorps, &Xor); Set(t, Mnemonic.Xorpd, &Xor);
        Set(t, Mnemonic.Pcmpeqb, &Pcmpeqb); Set(t, Mnemonic.Pcmpeqw, &Pcmpeqw); Set(t, Mnemonic.Pcmpeqd, &Pcmpeqd);
        Set(t, Mnemonic.Pcmpgtb, &Pcmpgtb); Set(t, Mnemonic.Pcmpgtw, &Pcmpgtw); Set(t, Mnemonic.Pcmpgtd, &Pcmpgtd);
        Set(t, Mnemonic.Pminub, &Pminub); Set(t, Mnemonic.Pmaxub, &Pmaxub); Set(t, Mnemonic.Pminsw, &Pminsw); Set(t, Mnemonic.Pmaxsw, &Pmaxsw);
        Set(t, Mnemonic.Pmullw, &Pmullw); Set(t, Mnemonic.Pmulhw, &Pmulhw); Set(t, Mnemonic.Pmulhuw, &Pmulhuw);
        Set(t, Mnemonic.Pmuludq, &Pmuludq); Set(t, Mnemonic.Pmaddwd, &Pmaddwd);
        Set(t, Mnemonic.Pavgb, &Pavgb); Set(t, Mnemonic.Pavgw, &Pavgw); Set(t, Mnemonic.Psadbw, &Psadbw);
        Set(t, Mnemonic.Psllw, &Psllw); Set(t, Mnemonic.Pslld, &Pslld); Set(t, Mnemonic.Psllq, &Psllq);
        Set(t, Mnemonic.Psrlw, &Psrlw); Set(t, Mnemonic.Psrld, &Psrld); Set(t, Mnemonic.Psrlq, &Psrlq);
        Set(t, Mnemonic.Psraw, &Psraw); Set(t, Mnemonic.Psrad, &Psrad);
        Set(t, Mnemonic.Pslldq, &Pslldq); Set(t, Mnemonic.Psrldq, &Psrldq);
        Set(t, Mnemonic.Pshufd, &Pshufd); Set(t, Mnemonic.Pshuflw, &Pshuflw); Set(t, Mnemonic.Pshufhw, &Pshufhw); Set(t, Mnemonic.Pshufw, &Pshufw);
        Set(t, Mnemonic.Shufps, &Shufps); Set(t, Mnemonic.Shufpd, &Shufpd);
        Set(t, Mnemonic.Punpcklbw, &Punpcklbw); Set(t, Mnemonic.Punpcklwd, &Punpcklwd); Set(t, Mnemonic.Punpckldq, &Punpckldq); Set(t, Mnemonic.Punpcklqdq, &Punpcklqdq);
        Set(t, Mnemonic.Punpckhbw, &Punpckhbw); Set(t, Mnemonic.Punpckhwd, &Punpckhwd); Set(t, Mnemonic.Punpckhdq, &Punpckhdq); Set(t, Mnemonic.Punpckhqdq, &Punpckhqdq);
        Set(t, Mnemonic.Unpcklps, &Punpckldq); Set(t, Mnemonic.Unpckhps, &Punpckhdq); Set(t, Mnemonic.Unpcklpd, &Punpcklqdq); Set(t, Mnemonic.Unpckhpd, &Punpckhqdq);
        Set(t, Mnemonic.Packsswb, &Packsswb); Set(t, Mnemonic.Packssdw, &Packssdw); Set(t, Mnemonic.Packuswb, &Packuswb);
        Set(t, Mnemonic.Pextrw, &Pextrw); Set(t, Mnemonic.Pinsrw, &Pinsrw);
    }

    // ---- lane helpers ----

    private static Vector128<byte> Map<T>(Vector128<byte> a, Vector128<byte> b, Func<T, T, T> f) where T : unmanaged
    {
        var x = a.As<byte, T>();
        var y = b.As<byte, T>();
        Span<T> r = stackalloc T[Vector128<T>.Count];
        for (var k = 0; k < r.Length; k++) r[k] = f(x.GetElement(k), y.GetElement(k));
        return Vector128.Create<T>(r).AsByte();
    }

    private static sbyte S8(int v) => (sbyte)Math.Clamp(v, sbyte.MinValue, sbyte.MaxValue);
    private static short S16(int v) => (short)Math.Clamp(v, short.MinValue, short.MaxValue);
    private static byte U8(int v) => (byte)Math.Clamp(v, 0, 255);
    private static ushort U16(int v) => (ushort)Math.Clamp(v, 0, 65535);

    // ---- add / subtract ----

    private static void Paddb(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => a + b);
    private static void Paddw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => (a.AsUInt16() + b.AsUInt16()).AsByte());
    private static void Paddd(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => (a.AsUInt32() + b.AsUInt32()).AsByte());
    private static void Paddq(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => (a.AsUInt64() + b.AsUInt64()).AsByte());
    private static void Psubb(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => a - b);
    private static void Psubw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => (a.AsUInt16() - b.AsUInt16()).AsByte());
    private static void Psubd(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => (a.AsUInt32() - b.AsUInt32()).AsByte());
    private static void Psubq(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => (a.AsUInt64() - b.AsUInt64()).AsByte());
    private static void Paddsb(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<sbyte>(a, b, static (x, y) => S8(x + y)));
    private static void Paddsw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<short>(a, b, static (x, y) => S16(x + y)));
    private static void Paddusb(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<byte>(a, b, static (x, y) => U8(x + y)));
    private static void Paddusw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<ushort>(a, b, static (x, y) => U16(x + y)));
    private static void Psubsb(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<sbyte>(a, b, static (x, y) => S8(x - y)));
    private static void Psubsw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<short>(a, b, static (x, y) => S16(x - y)));
    private static void Psubusb(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<byte>(a, b, static (x, y) => U8(x - y)));
    private static void Psubusw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<ushort>(a, b, static (x, y) => U16(x - y)));

    // ---- logic ----

    private static void And(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => a & b);
    private static void AndNot(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => ~a & b);
    private static void Or(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => a | b);
    private static void Xor(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => a ^ b);

    // ---- compare, min/max ----

    private static void Pcmpeqb(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.Equals(a, b));
    private static void Pcmpeqw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.Equals(a.AsUInt16(), b.AsUInt16()).AsByte());
    private static void Pcmpeqd(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.Equals(a.AsUInt32(), b.AsUInt32()).AsByte());
    private static void Pcmpgtb(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.GreaterThan(a.AsSByte(), b.AsSByte()).AsByte());
    private static void Pcmpgtw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.GreaterThan(a.AsInt16(), b.AsInt16()).AsByte());
    private static void Pcmpgtd(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.GreaterThan(a.AsInt32(), b.AsInt32()).AsByte());
    private static void Pminub(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.Min(a, b));
    private static void Pmaxub(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.Max(a, b));
    private static void Pminsw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.Min(a.AsInt16(), b.AsInt16()).AsByte());
    private static void Pmaxsw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Vector128.Max(a.AsInt16(), b.AsInt16()).AsByte());

    // ---- multiply, average, SAD ----

    private static void Pmullw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<short>(a, b, static (x, y) => (short)(x * y)));
    private static void Pmulhw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<short>(a, b, static (x, y) => (short)((x * y) >> 16)));
    private static void Pmulhuw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<ushort>(a, b, static (x, y) => (ushort)(((uint)x * y) >> 16)));

    /// <summary>PMULUDQ: unsigned 32x32→64 of dwords 0 (and 2).</summary>
    private static void Pmuludq(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) =>
    {
        var x = a.AsUInt32();
        var y = b.AsUInt32();
        return Vector128.Create((ulong)x.GetElement(0) * y.GetElement(0), (ulong)x.GetElement(2) * y.GetElement(2)).AsByte();
    });

    /// <summary>PMADDWD: pairwise signed word products summed into dwords (0x8000*0x8000*2 wraps to 0x80000000).</summary>
    private static void Pmaddwd(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) =>
    {
        var x = a.AsInt16();
        var y = b.AsInt16();
        Span<int> r = stackalloc int[4];
        for (var k = 0; k < 4; k++)
            r[k] = unchecked(x.GetElement(2 * k) * y.GetElement(2 * k) + x.GetElement(2 * k + 1) * y.GetElement(2 * k + 1));
        return Vector128.Create<int>(r).AsByte();
    });

    private static void Pavgb(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<byte>(a, b, static (x, y) => (byte)((x + y + 1) >> 1)));
    private static void Pavgw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) => Map<ushort>(a, b, static (x, y) => (ushort)((x + y + 1) >> 1)));

    /// <summary>PSADBW: per 8-byte group, the sum of absolute byte differences in the group's low word.</summary>
    private static void Psadbw(SoftwareCpu c, in Instruction i) => Binary(c, in i, static (a, b) =>
    {
        ulong lo = 0, hi = 0;
        for (var k = 0; k < 8; k++) lo += (ulong)Math.Abs(a.GetElement(k) - b.GetElement(k));
        for (var k = 8; k < 16; k++) hi += (ulong)Math.Abs(a.GetElement(k) - b.GetElement(k));
        return Vector128.Create(lo, hi).AsByte();
    });

    // ---- shifts ----

    private enum ShiftKind { Left, Right, Arith }

    /// <summary>Lane shifts by an immediate or by the low 64 bits of the source; counts past the lane width give 0 (or all sign bits).</summary>
    private static void Shift(SoftwareCpu c, in Instruction i, int size, ShiftKind kind)
    {
        Enter(c, in i);
        var count = i.Op1Kind == OpKind.Immediate8 ? i.Immediate8 : Read(c, in i, 1).AsUInt64().GetElement(0);
        var a = Read(c, in i, 0).AsUInt64();
        var bits = size * 8;
        var laneMask = size == 8 ? ulong.MaxValue : (1UL << bits) - 1;
        Span<ulong> q = stackalloc ulong[2];
        for (var h = 0; h < 2; h++)
        {
            var src = a.GetElement(h);
            ulong res = 0;
            for (var l = 0; l < 64; l += bits)
            {
                var v = (src >> l) & laneMask;
                ulong r;
                if (kind == ShiftKind.Arith)
                {
                    var sv = (long)(v << (64 - bits)) >> (64 - bits);
                    r = (ulong)(sv >> (int)Math.Min(count, (ulong)bits - 1)) & laneMask;
                }
                else if (count >= (ulong)bits) r = 0;
                else r = (kind == ShiftKind.Left ? v << (int)count : v >> (int)count) & laneMask;
                res |= r << l;
            }
            q[h] = res;
        }
        Write(c, in i, 0, Vector128.Create<ulong>(q).AsByte());
    }

    private static void Psllw(SoftwareCpu c, in Instruction i) => Shift(c, in i, 2, ShiftKind.Left);
    private static void Pslld(SoftwareCpu c, in Instruction i) => Shift(c, in i, 4, ShiftKind.Left);
    private static void Psllq(SoftwareCpu c, in Instruction i) => Shift(c, in i, 8, ShiftKind.Left);
    private static void Psrlw(SoftwareCpu c, in Instruction i) => Shift(c, in i, 2, ShiftKind.Right);
    private static void Psrld(SoftwareCpu c, in Instruction i) => Shift(c, in i, 4, ShiftKind.Right);
    private static void Psrlq(SoftwareCpu c, in Instruction i) => Shift(c, in i, 8, ShiftKind.Right);
    private static void Psraw(SoftwareCpu c, in Instruction i) => Shift(c, in i, 2, ShiftKind.Arith);
    private static void Psrad(SoftwareCpu c, in Instruction i) => Shift(c, in i, 4, ShiftKind.Arith);

    /// <summary>PSLLDQ/PSRLDQ: whole-register byte shifts; counts above 15 clear it.</summary>
    private static void ByteShift(SoftwareCpu c, in Instruction i, bool left)
    {
        Enter(c, in i);
        var a = Read(c, in i, 0);
        var n = i.Immediate8;
        Span<byte> r = stackalloc byte[16];
        for (var k = 0; k < 16; k++)
        {
            var from = left ? k - n : k + n;
            r[k] = from is >= 0 and < 16 ? a.GetElement(from) : (byte)0;
        }
        Write(c, in i, 0, Vector128.Create<byte>(r));
    }

    private static void Pslldq(SoftwareCpu c, in Instruction i) => ByteShift(c, in i, true);
    private static void Psrldq(SoftwareCpu c, in Instruction i) => ByteShift(c, in i, false);

    // ---- shuffles ----

    private static void Pshufd(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsUInt32();
        var imm = i.Immediate8;
        Span<uint> r = stackalloc uint[4];
        for (var k = 0; k < 4; k++) r[k] = s.GetElement((imm >> (2 * k)) & 3);
        Write(c, in i, 0, Vector128.Create<uint>(r).AsByte());
    }

    /// <summary>Shuffles four words starting at word <paramref name="first"/>; the other words are copied from the source.</summary>
    private static void ShuffleWords(SoftwareCpu c, in Instruction i, int first)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsUInt16();
        var imm = i.Immediate8;
        Span<ushort> r = stackalloc ushort[8];
        for (var k = 0; k < 8; k++) r[k] = s.GetElement(k);
        for (var k = 0; k < 4; k++) r[first + k] = s.GetElement(first + ((imm >> (2 * k)) & 3));
        Write(c, in i, 0, Vector128.Create<ushort>(r).AsByte());
    }

    private static void Pshuflw(SoftwareCpu c, in Instruction i) => ShuffleWords(c, in i, 0);
    private static void Pshufhw(SoftwareCpu c, in Instruction i) => ShuffleWords(c, in i, 4);
    private static void Pshufw(SoftwareCpu c, in Instruction i) => ShuffleWords(c, in i, 0);

    private static void Shufps(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var b = Read(c, in i, 1).AsUInt32();
        var a = Read(c, in i, 0).AsUInt32();
        var imm = i.Immediate8;
        var r = Vector128.Create(a.GetElement(imm & 3), a.GetElement((imm >> 2) & 3), b.GetElement((imm >> 4) & 3), b.GetElement((imm >> 6) & 3));
        Write(c, in i, 0, r.AsByte());
    }

    private static void Shufpd(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var b = Read(c, in i, 1).AsUInt64();
        var a = Read(c, in i, 0).AsUInt64();
        var imm = i.Immediate8;
        Write(c, in i, 0, Vector128.Create(a.GetElement(imm & 1), b.GetElement((imm >> 1) & 1)).AsByte());
    }

    // ---- unpacks ----

    /// <summary>Interleaves <paramref name="size"/>-byte elements of the low (or high) halves; MMX halves are 4 bytes.</summary>
    private static void Unpack(SoftwareCpu c, in Instruction i, int size, bool high)
    {
        Enter(c, in i);
        var b = Read(c, in i, 1);
        var a = Read(c, in i, 0);
        var half = Mmx(in i) ? 4 : 8;
        var start = high ? half : 0;
        Span<byte> r = stackalloc byte[16];
        for (var k = 0; k < half / size; k++)
            for (var j = 0; j < size; j++)
            {
                r[2 * k * size + j] = a.GetElement(start + k * size + j);
                r[(2 * k + 1) * size + j] = b.GetElement(start + k * size + j);
            }
        Write(c, in i, 0, Vector128.Create<byte>(r));
    }

    private static void Punpcklbw(SoftwareCpu c, in Instruction i) => Unpack(c, in i, 1, false);
    private static void Punpcklwd(SoftwareCpu c, in Instruction i) => Unpack(c, in i, 2, false);
    private static void Punpckldq(SoftwareCpu c, in Instruction i) => Unpack(c, in i, 4, false);
    private static void Punpcklqdq(SoftwareCpu c, in Instruction i) => Unpack(c, in i, 8, false);
    private static void Punpckhbw(SoftwareCpu c, in Instruction i) => Unpack(c, in i, 1, true);
    private static void Punpckhwd(SoftwareCpu c, in Instruction i) => Unpack(c, in i, 2, true);
    private static void Punpckhdq(SoftwareCpu c, in Instruction i) => Unpack(c, in i, 4, true);
    private static void Punpckhqdq(SoftwareCpu c, in Instruction i) => Unpack(c, in i, 8, true);

    // ---- packs ----

    private static void Packsswb(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var b = Read(c, in i, 1).AsInt16();
        var a = Read(c, in i, 0).AsInt16();
        var n = Mmx(in i) ? 4 : 8;
        Span<sbyte> r = stackalloc sbyte[16];
        for (var k = 0; k < n; k++) { r[k] = S8(a.GetElement(k)); r[n + k] = S8(b.GetElement(k)); }
        Write(c, in i, 0, Vector128.Create<sbyte>(r).AsByte());
    }

    private static void Packuswb(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var b = Read(c, in i, 1).AsInt16();
        var a = Read(c, in i, 0).AsInt16();
        var n = Mmx(in i) ? 4 : 8;
        Span<byte> r = stackalloc byte[16];
        for (var k = 0; k < n; k++) { r[k] = U8(a.GetElement(k)); r[n + k] = U8(b.GetElement(k)); }
        Write(c, in i, 0, Vector128.Create<byte>(r));
    }

    private static void Packssdw(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var b = Read(c, in i, 1).AsInt32();
        var a = Read(c, in i, 0).AsInt32();
        var n = Mmx(in i) ? 2 : 4;
        Span<short> r = stackalloc short[8];
        for (var k = 0; k < n; k++) { r[k] = S16(a.GetElement(k)); r[n + k] = S16(b.GetElement(k)); }
        Write(c, in i, 0, Vector128.Create<short>(r).AsByte());
    }

    // ---- word insert/extract ----

    private static void Pextrw(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var s = Read(c, in i, 1).AsUInt16();
        var sel = i.Immediate8 & (IsMm(i.Op1Register) ? 3 : 7);
        c.WriteGpr(i.Op0Register, s.GetElement(sel));
    }

    private static void Pinsrw(SoftwareCpu c, in Instruction i)
    {
        Enter(c, in i);
        var w = (ushort)Read(c, in i, 1).AsUInt64().GetElement(0);
        var a = Read(c, in i, 0).AsUInt16();
        var sel = i.Immediate8 & (Mmx(in i) ? 3 : 7);
        Write(c, in i, 0, a.WithElement(sel, w).AsByte());
    }
}
