using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Shifts and rotates (SDM Vol. 2B, SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD, SHRD). The count is masked to
/// 5 bits (6 for 64-bit operands); a masked count of 0 changes neither the destination nor the flags.
/// SHL/SHR/SAR flags are lazy (<see cref="FlagOp.Shl"/> etc.); rotates touch only CF and OF.
/// The flags the SDM leaves undefined are documented where they are produced.
/// </summary>
internal static unsafe class Shifts
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Shl, &Shl);
        t.Set(Mnemonic.Sal, &Shl);
        t.Set(Mnemonic.Shr, &Shr);
        t.Set(Mnemonic.Sar, &Sar);
        t.Set(Mnemonic.Rol, &Rol);
        t.Set(Mnemonic.Ror, &Ror);
        t.Set(Mnemonic.Rcl, &Rcl);
        t.Set(Mnemonic.Rcr, &Rcr);
        t.Set(Mnemonic.Shld, &Shld);
        t.Set(Mnemonic.Shrd, &Shrd);
    }

    /// <summary>The count operand (CL, an immediate, or the implicit 1 of D0/D1) masked to 5 or 6 bits.</summary>
    private static int Count(SoftwareCpu cpu, in Instruction i, int op, int size) =>
        (int)(cpu.ReadOperand(in i, op) & (size == 8 ? 0x3FUL : 0x1FUL));

    /// <summary>
    /// A masked count of 0: no flag changes and memory is not written (its write check still happened), but
    /// a 32-bit register destination is written back, so in 64-bit mode its upper half is cleared, as the
    /// host does.
    /// </summary>
    private static void NoCount(SoftwareCpu cpu, in Instruction i, ulong la, ulong d)
    {
        if (i.Op0Kind == OpKind.Register) cpu.CompleteUpdate(in i, la, d);
    }

    /// <summary>SHL/SAL, SHR, SAR with lazy flags.</summary>
    private static void Shift(SoftwareCpu cpu, in Instruction i, FlagOp kind)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var count = Count(cpu, in i, 1, size);
        var d = cpu.ReadForUpdate(in i, out var la);
        if (count == 0) { NoCount(cpu, in i, la, d); return; }
        var r = kind switch
        {
            FlagOp.Shl => d << count,
            FlagOp.Shr => d >> count,
            _ => (ulong)(SoftwareCpu.SignExtend(d, size) >> count),
        };
        r &= SoftwareCpu.SizeMask(size);
        cpu.CompleteUpdate(in i, la, r);
        cpu.SetLazy(kind, size, d, (ulong)count, r);
    }

    private static void Shl(SoftwareCpu cpu, in Instruction i) => Shift(cpu, in i, FlagOp.Shl);
    private static void Shr(SoftwareCpu cpu, in Instruction i) => Shift(cpu, in i, FlagOp.Shr);
    private static void Sar(SoftwareCpu cpu, in Instruction i) => Shift(cpu, in i, FlagOp.Sar);

    private static bool Msb(ulong v, int size) => (v & SoftwareCpu.SignBit(size)) != 0;

    /// <summary>
    /// ROL: CF ← LSB(result); OF ← MSB(result) XOR CF, defined for a count of 1 only: for other counts we
    /// produce the same formula on the final result (undefined by the SDM).
    /// </summary>
    private static void Rol(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var count = Count(cpu, in i, 1, size);
        var d = cpu.ReadForUpdate(in i, out var la);
        if (count == 0) { NoCount(cpu, in i, la, d); return; }
        var bits = size * 8;
        var n = count % bits;
        var r = n == 0 ? d : ((d << n) | (d >> (bits - n))) & SoftwareCpu.SizeMask(size);
        cpu.CompleteUpdate(in i, la, r);
        var cf = (r & 1) != 0;
        cpu.SetCarryOverflow(cf, Msb(r, size) != cf);
    }

    /// <summary>ROR: CF ← MSB(result); OF ← the two top bits of the result differ (count 1; same formula otherwise).</summary>
    private static void Ror(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var count = Count(cpu, in i, 1, size);
        var d = cpu.ReadForUpdate(in i, out var la);
        if (count == 0) { NoCount(cpu, in i, la, d); return; }
        var bits = size * 8;
        var n = count % bits;
        var r = n == 0 ? d : ((d >> n) | (d << (bits - n))) & SoftwareCpu.SizeMask(size);
        cpu.CompleteUpdate(in i, la, r);
        var cf = Msb(r, size);
        cpu.SetCarryOverflow(cf, cf != Msb(r << 1, size));
    }

    /// <summary>
    /// The rotate-through-carry count: 8-bit operands rotate through 9 bits (count mod 9), 16-bit through
    /// 17 (mod 17), wider ones use the masked count as is.
    /// </summary>
    private static int CarryRotateCount(int count, int size) => size switch { 1 => count % 9, 2 => count % 17, _ => count };

    /// <summary>
    /// RCL: rotate the (width+1)-bit value CF:DEST left. OF ← MSB(result) XOR CF for a count of 1; for other
    /// counts the same formula (undefined by the SDM). With a masked count that is a multiple of 9/17 the
    /// value and CF stay as they were, and OF is recomputed by the same formula.
    /// </summary>
    private static void Rcl(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var count = Count(cpu, in i, 1, size);
        var d = cpu.ReadForUpdate(in i, out var la);
        if (count == 0) { NoCount(cpu, in i, la, d); return; }
        var bits = size * 8;
        var n = CarryRotateCount(count, size);
        var cfIn = cpu.GetCF();
        var v = ((UInt128)(cfIn ? 1u : 0u) << bits) | d;
        if (n != 0) v = ((v << n) | (v >> (bits + 1 - n))) & (((UInt128)1 << (bits + 1)) - 1);
        var r = (ulong)v & SoftwareCpu.SizeMask(size);
        var cf = ((v >> bits) & 1) != 0;
        cpu.CompleteUpdate(in i, la, r);
        cpu.SetCarryOverflow(cf, Msb(r, size) != cf);
    }

    /// <summary>RCR: rotate CF:DEST right. OF ← MSB(DEST) XOR CF before the rotation (count 1), i.e. the top two result bits differ.</summary>
    private static void Rcr(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var count = Count(cpu, in i, 1, size);
        var d = cpu.ReadForUpdate(in i, out var la);
        if (count == 0) { NoCount(cpu, in i, la, d); return; }
        var bits = size * 8;
        var n = CarryRotateCount(count, size);
        var cfIn = cpu.GetCF();
        var v = ((UInt128)(cfIn ? 1u : 0u) << bits) | d;
        if (n != 0) v = ((v >> n) | (v << (bits + 1 - n))) & (((UInt128)1 << (bits + 1)) - 1);
        var r = (ulong)v & SoftwareCpu.SizeMask(size);
        var cf = ((v >> bits) & 1) != 0;
        cpu.CompleteUpdate(in i, la, r);
        cpu.SetCarryOverflow(cf, Msb(r, size) != Msb(r << 1, size));
    }

    /// <summary>
    /// SHLD r/m, r, count: shift DEST left filling from the top of SRC. CF = last bit out of DEST; SF, ZF,
    /// PF from the result; OF = sign change for a count of 1. Undefined cases, as the host (AMD Zen) does
    /// them: OF for other counts = CF XOR MSB(DEST &lt;&lt; count) (the count-1 rule generalised); for a 16-bit
    /// operand and a count of 17..31 the result is SRC rotated left by count − 16, with CF = 0.
    /// </summary>
    private static void Shld(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var count = Count(cpu, in i, 2, size);
        var s = cpu.ReadGpr(i.Op1Register);
        var d = cpu.ReadForUpdate(in i, out var la);
        if (count == 0) { NoCount(cpu, in i, la, d); return; }
        var bits = size * 8;
        ulong r;
        bool cf;
        if (count > bits)
        {
            var n = count - 16;
            r = ((s << n) | (s >> (16 - n))) & 0xFFFF;
            cf = false;
        }
        else
        {
            var wide = ((UInt128)d << bits) | s;
            r = (ulong)(wide >> (bits - count)) & SoftwareCpu.SizeMask(size);
            cf = ((d >> (bits - count)) & 1) != 0;
        }
        cpu.CompleteUpdate(in i, la, r);
        var shiftedOut = count >= bits ? 0 : d << count;
        SetDoubleShiftFlags(cpu, size, r, cf, Msb(shiftedOut, size) != cf);
    }

    /// <summary>
    /// SHRD r/m, r, count: shift DEST right filling from the bottom of SRC. OF = the top two result bits
    /// differ (the sign change for a count of 1; the host uses it for every count). For a 16-bit operand and
    /// a count of 17..31 (undefined) the result is SRC rotated right by count − 16, with CF = 0, as on the host.
    /// </summary>
    private static void Shrd(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var count = Count(cpu, in i, 2, size);
        var s = cpu.ReadGpr(i.Op1Register);
        var d = cpu.ReadForUpdate(in i, out var la);
        if (count == 0) { NoCount(cpu, in i, la, d); return; }
        var bits = size * 8;
        ulong r;
        bool cf;
        if (count > bits)
        {
            var n = count - 16;
            r = ((s >> n) | (s << (16 - n))) & 0xFFFF;
            cf = false;
        }
        else
        {
            var wide = ((UInt128)s << bits) | d;
            r = (ulong)(wide >> count) & SoftwareCpu.SizeMask(size);
            cf = ((d >> (count - 1)) & 1) != 0;
        }
        cpu.CompleteUpdate(in i, la, r);
        SetDoubleShiftFlags(cpu, size, r, cf, Msb(r, size) != Msb(r << 1, size));
    }

    /// <summary>SF/ZF/PF from the result, CF and OF given; AF (undefined) set, as the host does.</summary>
    private static void SetDoubleShiftFlags(SoftwareCpu cpu, int size, ulong r, bool cf, bool of)
    {
        var f = SoftwareCpu.ResultFlags(r, size) | RFlags.AF;
        if (cf) f |= RFlags.CF;
        if (of) f |= RFlags.OF;
        cpu.SetArithFlags(f);
    }
}
