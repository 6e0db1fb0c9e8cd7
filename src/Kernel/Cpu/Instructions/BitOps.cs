using System.Buffers.Binary;
using System.Numerics;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Bit instructions (SDM Vol. 2A/2B): BT, BTS, BTR, BTC; BSF, BSR; SETcc, CMOVcc; BSWAP.
/// </summary>
internal static unsafe class BitOps
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Bt, &Bt);
        t.Set(Mnemonic.Bts, &BitUpdate<SetBit>);
        t.Set(Mnemonic.Btr, &BitUpdate<ResetBit>);
        t.Set(Mnemonic.Btc, &BitUpdate<ComplementBit>);
        t.Set(Mnemonic.Bsf, &Bsf);
        t.Set(Mnemonic.Bsr, &Bsr);
        // Our model advertises neither BMI1 nor LZCNT, so F3 0F BC/BD are BSF/BSR with an ignored REP prefix,
        // as on the CPUs we claim to be. Linux emits `rep; bsf` on purpose and relies on this.
        t.Set(Mnemonic.Tzcnt, &Bsf);
        t.Set(Mnemonic.Lzcnt, &Bsr);
        t.Set(Mnemonic.Bswap, &Bswap);
        foreach (var m in new[]
                 {
                     Mnemonic.Seto, Mnemonic.Setno, Mnemonic.Setb, Mnemonic.Setae, Mnemonic.Sete, Mnemonic.Setne, Mnemonic.Setbe, Mnemonic.Seta,
                     Mnemonic.Sets, Mnemonic.Setns, Mnemonic.Setp, Mnemonic.Setnp, Mnemonic.Setl, Mnemonic.Setge, Mnemonic.Setle, Mnemonic.Setg,
                 })
            t.Set(m, &Setcc);
        foreach (var m in new[]
                 {
                     Mnemonic.Cmovo, Mnemonic.Cmovno, Mnemonic.Cmovb, Mnemonic.Cmovae, Mnemonic.Cmove, Mnemonic.Cmovne, Mnemonic.Cmovbe, Mnemonic.Cmova,
                     Mnemonic.Cmovs, Mnemonic.Cmovns, Mnemonic.Cmovp, Mnemonic.Cmovnp, Mnemonic.Cmovl, Mnemonic.Cmovge, Mnemonic.Cmovle, Mnemonic.Cmovg,
                 })
            t.Set(m, &Cmovcc);
    }

    // ---- BT, BTS, BTR, BTC ----

    /// <summary>
    /// Where the selected bit is. A register operand, or an immediate offset, selects bit (offset mod width)
    /// of the operand itself. A register offset with a memory operand addresses a bit string: the offset is
    /// signed (16, 32 or 64 bits) and the accessed operand is the width-sized unit at
    /// EA + width/8 × floor(offset / width) (SDM Vol. 2A, 3.1.1.9 and BT).
    /// </summary>
    private static ulong Locate(SoftwareCpu cpu, in Instruction i, int size, out int bit, out bool memory)
    {
        var bits = size * 8;
        var offset = cpu.ReadOperand(in i, 1);
        memory = i.Op0Kind == OpKind.Memory;
        if (!memory || i.Op1Kind != OpKind.Register)
        {
            bit = (int)(offset & (ulong)(bits - 1));
            return memory ? cpu.EffectiveAddress(in i) : 0;
        }
        var signed = SoftwareCpu.SignExtend(offset, size);
        bit = (int)(signed & (bits - 1));
        var unit = signed >> BitOperations.Log2((uint)bits); // floor division by the width
        var ea = cpu.EffectiveAddress(in i) + (ulong)(unit * size);
        var addressSize = cpu.AddressSize(in i);
        return addressSize == 8 ? ea : addressSize == 4 ? (uint)ea : (ushort)ea;
    }

    /// <summary>CF ← the bit. ZF unaffected; OF, SF, AF, PF undefined: left unchanged, as the host does.</summary>
    private static void SetCarry(SoftwareCpu cpu, bool cf)
    {
        var f = cpu.ComputeArith() & ~RFlags.CF;
        cpu.SetArithFlags(cf ? f | RFlags.CF : f);
    }

    private static void Bt(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var ea = Locate(cpu, in i, size, out var bit, out var memory);
        var v = memory ? cpu.ReadMem(SoftwareCpu.SegIndex(i.MemorySegment), ea, size) : cpu.ReadGpr(i.Op0Register);
        SetCarry(cpu, ((v >> bit) & 1) != 0);
    }

    private interface IBitOp { static abstract ulong Apply(ulong v, ulong mask); }
    private struct SetBit : IBitOp { public static ulong Apply(ulong v, ulong m) => v | m; }
    private struct ResetBit : IBitOp { public static ulong Apply(ulong v, ulong m) => v & ~m; }
    private struct ComplementBit : IBitOp { public static ulong Apply(ulong v, ulong m) => v ^ m; }

    private struct BitRmw<T> : IRmw where T : struct, IBitOp
    {
        public ulong Mask;
        public readonly ulong Apply(ulong old) => T.Apply(old, Mask);
    }

    private static void BitUpdate<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IBitOp
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var ea = Locate(cpu, in i, size, out var bit, out var memory);
        var mask = 1UL << bit;
        ulong old;
        if (!memory)
        {
            if (i.HasLockPrefix) throw CpuFault.InvalidOpcode();
            old = cpu.ReadGpr(i.Op0Register);
            cpu.WriteGpr(i.Op0Register, T.Apply(old, mask));
        }
        else
        {
            var la = cpu.SegmentedAddress(SoftwareCpu.SegIndex(i.MemorySegment), ea, size, AccessKind.Write);
            if (i.HasLockPrefix)
            {
                var op = new BitRmw<T> { Mask = mask };
                old = LockedMemory.Update(cpu, la, size, ref op);
            }
            else
            {
                old = cpu.ReadLinear(la, size);
                cpu.WriteLinear(la, size, T.Apply(old, mask));
            }
        }
        SetCarry(cpu, (old & mask) != 0);
    }

    // ---- BSF, BSR ----

    /// <summary>
    /// BSF/BSR: with a zero source ZF is set and the destination is left unchanged, upper half included (as
    /// AMD documents and the host does; Intel calls it undefined); otherwise ZF is clear and the destination
    /// gets the index of the lowest/highest set bit. CF, OF, SF, AF, PF are undefined: kept as they were,
    /// as the host does.
    /// </summary>
    private static void BitScan(SoftwareCpu cpu, in Instruction i, bool reverse)
    {
        var s = cpu.ReadOperand(in i, 1);
        var f = cpu.ComputeArith() & ~RFlags.ZF;
        if (s == 0)
        {
            cpu.SetArithFlags(f | RFlags.ZF);
            return;
        }
        var index = reverse ? 63 - BitOperations.LeadingZeroCount(s) : BitOperations.TrailingZeroCount(s);
        cpu.WriteGpr(i.Op0Register, (ulong)index);
        cpu.SetArithFlags(f);
    }

    private static void Bsf(SoftwareCpu cpu, in Instruction i) => BitScan(cpu, in i, reverse: false);
    private static void Bsr(SoftwareCpu cpu, in Instruction i) => BitScan(cpu, in i, reverse: true);

    // ---- SETcc, CMOVcc, BSWAP ----

    private static void Setcc(SoftwareCpu cpu, in Instruction i) =>
        cpu.WriteOperand(in i, 0, cpu.Condition(i.ConditionCode) ? 1UL : 0);

    /// <summary>
    /// CMOVcc: the source is read whether or not the condition holds (a memory source faults either way);
    /// a 32-bit destination is written, and so zero-extended in 64-bit mode, even when the condition is false.
    /// </summary>
    private static void Cmovcc(SoftwareCpu cpu, in Instruction i)
    {
        var s = cpu.ReadOperand(in i, 1);
        if (cpu.Condition(i.ConditionCode)) cpu.WriteGpr(i.Op0Register, s);
        else if (i.Op0Register.GetSize() == 4) cpu.WriteGpr(i.Op0Register, cpu.ReadGpr(i.Op0Register));
    }

    /// <summary>BSWAP r32/r64. With a 16-bit operand the result is undefined: the register becomes 0 (as on Intel and AMD).</summary>
    private static void Bswap(SoftwareCpu cpu, in Instruction i)
    {
        var r = i.Op0Register;
        var v = cpu.ReadGpr(r);
        switch (r.GetSize())
        {
            case 2: cpu.WriteGpr(r, 0); break;
            case 4: cpu.WriteGpr(r, BinaryPrimitives.ReverseEndianness((uint)v)); break;
            default: cpu.WriteGpr(r, BinaryPrimitives.ReverseEndianness(v)); break;
        }
    }
}
