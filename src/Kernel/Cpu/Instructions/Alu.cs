using Iced.Intel;
using Reg = Iced.Intel.Register;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Integer arithmetic and logic (SDM Vol. 2): ADD, ADC, SUB, SBB, CMP, AND, OR, XOR, TEST, INC, DEC, NEG,
/// NOT, and the exchanges XADD, XCHG, CMPXCHG, CMPXCHG8B, CMPXCHG16B.
/// A LOCK prefix (and XCHG with memory, always locked) makes the read-modify-write atomic against other
/// vCPUs through <see cref="LockedMemory"/>. Iced decodes LOCK on anything that does not allow it (a
/// register destination, CMP, TEST...) as an invalid instruction, which raises #UD; the handlers check the
/// memory destination again so a different decoder configuration cannot slip past.
/// </summary>
internal static unsafe partial class Alu
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Add, &Binary<AddOp>);
        t.Set(Mnemonic.Adc, &Binary<AdcOp>);
        t.Set(Mnemonic.Sub, &Binary<SubOp>);
        t.Set(Mnemonic.Sbb, &Binary<SbbOp>);
        t.Set(Mnemonic.And, &Binary<AndOp>);
        t.Set(Mnemonic.Or, &Binary<OrOp>);
        t.Set(Mnemonic.Xor, &Binary<XorOp>);
        t.Set(Mnemonic.Cmp, &Cmp);
        t.Set(Mnemonic.Test, &Test);
        t.Set(Mnemonic.Inc, &Unary<IncOp>);
        t.Set(Mnemonic.Dec, &Unary<DecOp>);
        t.Set(Mnemonic.Neg, &Unary<NegOp>);
        t.Set(Mnemonic.Not, &Unary<NotOp>);
        t.Set(Mnemonic.Xadd, &Xadd);
        t.Set(Mnemonic.Xchg, &Xchg);
        t.Set(Mnemonic.Cmpxchg, &Cmpxchg);
        t.Set(Mnemonic.Cmpxchg8b, &Cmpxchg8b);
        t.Set(Mnemonic.Cmpxchg16b, &Cmpxchg16b);
    }

    // ---- two-operand arithmetic and logic ----

    private interface IAluOp
    {
        static abstract FlagOp Flags { get; }
        static abstract ulong Compute(ulong d, ulong s, ulong carry);
    }

    private struct AddOp : IAluOp { public static FlagOp Flags => FlagOp.Add; public static ulong Compute(ulong d, ulong s, ulong c) => d + s; }
    private struct AdcOp : IAluOp { public static FlagOp Flags => FlagOp.Adc; public static ulong Compute(ulong d, ulong s, ulong c) => d + s + c; }
    private struct SubOp : IAluOp { public static FlagOp Flags => FlagOp.Sub; public static ulong Compute(ulong d, ulong s, ulong c) => d - s; }
    private struct SbbOp : IAluOp { public static FlagOp Flags => FlagOp.Sbb; public static ulong Compute(ulong d, ulong s, ulong c) => d - s - c; }
    private struct AndOp : IAluOp { public static FlagOp Flags => FlagOp.Logic; public static ulong Compute(ulong d, ulong s, ulong c) => d & s; }
    private struct OrOp : IAluOp { public static FlagOp Flags => FlagOp.Logic; public static ulong Compute(ulong d, ulong s, ulong c) => d | s; }
    private struct XorOp : IAluOp { public static FlagOp Flags => FlagOp.Logic; public static ulong Compute(ulong d, ulong s, ulong c) => d ^ s; }

    private struct BinaryRmw<T> : IRmw where T : struct, IAluOp
    {
        public ulong Src, Carry;
        public readonly ulong Apply(ulong old) => T.Compute(old, Src, Carry);
    }

    private static void Binary<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IAluOp
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var carry = (T.Flags is FlagOp.Adc or FlagOp.Sbb) && cpu.GetCF() ? 1UL : 0;
        ulong d;
        var s = cpu.ReadOperand(in i, 1);
        if (i.HasLockPrefix)
        {
            var op = new BinaryRmw<T> { Src = s, Carry = carry };
            d = LockedMemory.Update(cpu, LockedLinear(cpu, in i, size), size, ref op);
        }
        else
        {
            d = cpu.ReadForUpdate(in i, out var la);
            cpu.CompleteUpdate(in i, la, T.Compute(d, s, carry));
        }
        SetFlags<T>(cpu, size, d, s, T.Compute(d, s, carry), carry);
    }

    private static void SetFlags<T>(SoftwareCpu cpu, int size, ulong d, ulong s, ulong r, ulong carry) where T : struct, IAluOp
    {
        if (T.Flags is FlagOp.Adc or FlagOp.Sbb) cpu.SetLazyCarry(T.Flags == FlagOp.Sbb, size, d, s, r, carry != 0);
        else cpu.SetLazy(T.Flags, size, d, s, r);
    }

    /// <summary>The locked destination: memory only (#UD otherwise), checked for writing.</summary>
    private static ulong LockedLinear(SoftwareCpu cpu, in Instruction i, int size)
    {
        if (i.Op0Kind != OpKind.Memory) throw CpuFault.InvalidOpcode();
        return LockedMemory.Linear(cpu, in i, size);
    }

    private static void Cmp(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var d = cpu.ReadOperand(in i, 0);
        var s = cpu.ReadOperand(in i, 1);
        cpu.SetLazy(FlagOp.Sub, size, d, s, d - s);
    }

    private static void Test(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var r = cpu.ReadOperand(in i, 0) & cpu.ReadOperand(in i, 1);
        cpu.SetLazy(FlagOp.Logic, size, 0, 0, r);
    }

    // ---- one-operand: INC, DEC, NEG, NOT ----

    private interface IUnaryOp
    {
        static abstract ulong Compute(ulong d);
        static abstract void SetFlags(SoftwareCpu cpu, int size, ulong d, ulong r);
    }

    private struct IncOp : IUnaryOp
    {
        public static ulong Compute(ulong d) => d + 1;
        public static void SetFlags(SoftwareCpu cpu, int size, ulong d, ulong r) => cpu.SetLazyIncDec(false, size, d, r);
    }

    private struct DecOp : IUnaryOp
    {
        public static ulong Compute(ulong d) => d - 1;
        public static void SetFlags(SoftwareCpu cpu, int size, ulong d, ulong r) => cpu.SetLazyIncDec(true, size, d, r);
    }

    /// <summary>NEG: flags as for 0 - d (CF set unless d is 0).</summary>
    private struct NegOp : IUnaryOp
    {
        public static ulong Compute(ulong d) => 0 - d;
        public static void SetFlags(SoftwareCpu cpu, int size, ulong d, ulong r) => cpu.SetLazy(FlagOp.Sub, size, 0, d, r);
    }

    /// <summary>NOT changes no flags.</summary>
    private struct NotOp : IUnaryOp
    {
        public static ulong Compute(ulong d) => ~d;
        public static void SetFlags(SoftwareCpu cpu, int size, ulong d, ulong r) { }
    }

    private struct UnaryRmw<T> : IRmw where T : struct, IUnaryOp
    {
        public readonly ulong Apply(ulong old) => T.Compute(old);
    }

    private static void Unary<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IUnaryOp
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        ulong d;
        if (i.HasLockPrefix)
        {
            var op = new UnaryRmw<T>();
            d = LockedMemory.Update(cpu, LockedLinear(cpu, in i, size), size, ref op);
        }
        else
        {
            d = cpu.ReadForUpdate(in i, out var la);
            cpu.CompleteUpdate(in i, la, T.Compute(d));
        }
        T.SetFlags(cpu, size, d, T.Compute(d));
    }

    // ---- exchanges ----

    private struct AddRmw : IRmw
    {
        public ulong Src;
        public readonly ulong Apply(ulong old) => old + Src;
    }

    private struct SwapRmw : IRmw
    {
        public ulong Value;
        public readonly ulong Apply(ulong old) => Value;
    }

    private struct CompareRmw : IRmw
    {
        public ulong Expected, Desired, Mask;
        public readonly ulong Apply(ulong old) => (old & Mask) == (Expected & Mask) ? Desired : old;
    }

    /// <summary>XADD r/m, r: TEMP ← SRC + DEST; SRC ← DEST; DEST ← TEMP (so with one register it ends up the sum).</summary>
    private static void Xadd(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var s = cpu.ReadGpr(i.Op1Register);
        ulong d;
        if (i.HasLockPrefix)
        {
            var op = new AddRmw { Src = s };
            d = LockedMemory.Update(cpu, LockedLinear(cpu, in i, size), size, ref op);
            cpu.WriteGpr(i.Op1Register, d);
        }
        else if (i.Op0Kind == OpKind.Register)
        {
            d = cpu.ReadGpr(i.Op0Register);
            cpu.WriteGpr(i.Op1Register, d);
            cpu.WriteGpr(i.Op0Register, d + s);
        }
        else
        {
            d = cpu.ReadForUpdate(in i, out var la);
            cpu.CompleteUpdate(in i, la, d + s);
            cpu.WriteGpr(i.Op1Register, d);
        }
        cpu.SetLazy(FlagOp.Add, size, d, s, d + s);
    }

    /// <summary>XCHG: with a memory operand it is locked whether or not LOCK is given (SDM Vol. 2B, XCHG).</summary>
    private static void Xchg(SoftwareCpu cpu, in Instruction i)
    {
        if (i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register)
        {
            var a = cpu.ReadGpr(i.Op0Register);
            var b = cpu.ReadGpr(i.Op1Register);
            cpu.WriteGpr(i.Op0Register, b);
            cpu.WriteGpr(i.Op1Register, a);
            return;
        }
        var memOp = i.Op0Kind == OpKind.Memory ? 0 : 1;
        var reg = memOp == 0 ? i.Op1Register : i.Op0Register;
        var size = reg.GetSize();
        var la = cpu.MemoryLinear(in i, size, AccessKind.Write);
        var op = new SwapRmw { Value = cpu.ReadGpr(reg) };
        var old = LockedMemory.Update(cpu, la, size, ref op);
        cpu.WriteGpr(reg, old);
    }

    private static Reg Accumulator(int size) => size switch
    {
        1 => Reg.AL, 2 => Reg.AX, 4 => Reg.EAX, _ => Reg.RAX,
    };

    /// <summary>
    /// CMPXCHG r/m, r: compare the accumulator with DEST; equal → DEST ← SRC, else the accumulator ← DEST.
    /// Flags as CMP accumulator, DEST. The SDM's pseudo-code writes DEST back on a mismatch; for a memory
    /// destination we do (the write check and cycle happen either way), but a 32-bit register destination
    /// keeps its upper half on a mismatch, as the host does. The accumulator is written only on a mismatch
    /// (zero-extending RAX for 32-bit operands).
    /// </summary>
    private static void Cmpxchg(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var acc = Accumulator(size);
        var a = cpu.ReadGpr(acc);
        var s = cpu.ReadGpr(i.Op1Register);
        ulong d;
        if (i.HasLockPrefix)
        {
            var op = new CompareRmw { Expected = a, Desired = s, Mask = SoftwareCpu.SizeMask(size) };
            d = LockedMemory.Update(cpu, LockedLinear(cpu, in i, size), size, ref op);
        }
        else
        {
            d = cpu.ReadForUpdate(in i, out var la);
            // Memory receives a write cycle either way; a register destination is left alone on a mismatch.
            if (d == a || i.Op0Kind == OpKind.Memory) cpu.CompleteUpdate(in i, la, d == a ? s : d);
        }
        if (d != a) cpu.WriteGpr(acc, d);
        cpu.SetLazy(FlagOp.Sub, size, a, d, a - d);
    }

    /// <summary>Sets ZF alone, keeping the other arithmetic flags.</summary>
    private static void SetZeroFlag(SoftwareCpu cpu, bool zf)
    {
        var f = cpu.ComputeArith() & ~RFlags.ZF;
        cpu.SetArithFlags(zf ? f | RFlags.ZF : f);
    }

    /// <summary>
    /// CMPXCHG8B m64: EDX:EAX against m64; equal → m64 ← ECX:EBX, ZF=1; else EDX:EAX ← m64, ZF=0. Done
    /// atomically with or without LOCK (an atomic compare-exchange is a valid unlocked one).
    /// </summary>
    private static void Cmpxchg8b(SoftwareCpu cpu, in Instruction i)
    {
        if (i.Op0Kind != OpKind.Memory) throw CpuFault.InvalidOpcode();
        var la = cpu.MemoryLinear(in i, 8, AccessKind.Write);
        var g = cpu.Gprs;
        var expected = ((ulong)(uint)g[Gpr.RDX] << 32) | (uint)g[Gpr.RAX];
        var op = new CompareRmw { Expected = expected, Desired = ((ulong)(uint)g[Gpr.RCX] << 32) | (uint)g[Gpr.RBX], Mask = ulong.MaxValue };
        var old = LockedMemory.Update(cpu, la, 8, ref op);
        if (old != expected)
        {
            cpu.WriteGpr(Reg.EAX, (uint)old);
            cpu.WriteGpr(Reg.EDX, old >> 32);
        }
        SetZeroFlag(cpu, old == expected);
    }

    /// <summary>CMPXCHG16B m128: RDX:RAX against m128 (16-byte aligned, else #GP(0)); equal → m128 ← RCX:RBX.</summary>
    private static void Cmpxchg16b(SoftwareCpu cpu, in Instruction i)
    {
        if (i.Op0Kind != OpKind.Memory) throw CpuFault.InvalidOpcode();
        var la = cpu.MemoryLinear(in i, 16, AccessKind.Write);
        if ((la & 15) != 0) throw CpuFault.General(0);
        var g = cpu.Gprs;
        var expected = ((UInt128)g[Gpr.RDX] << 64) | g[Gpr.RAX];
        var desired = ((UInt128)g[Gpr.RCX] << 64) | g[Gpr.RBX];
        var old = LockedMemory.CompareExchange128(cpu, la, expected, desired);
        if (old != expected)
        {
            g[Gpr.RAX] = (ulong)old;
            g[Gpr.RDX] = (ulong)(old >> 64);
        }
        SetZeroFlag(cpu, old == expected);
    }
}
