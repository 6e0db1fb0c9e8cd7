using Iced.Intel;
using Reg = Iced.Intel.Register;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// ADD, SUB, AND, OR, XOR, CMP and TEST with a 32- or 64-bit register destination and a register or
/// immediate source, specialised per decoded instruction when its block is built (as <see cref="MoveForms"/>
/// does for MOV). Each computes exactly what the general handler computes for that form and records the
/// same lazy flags; memory operands, 8/16-bit operands, ADC/SBB and LOCK keep the general handler.
/// </summary>
internal static unsafe partial class Alu
{
    public static delegate*<SoftwareCpu, in Instruction, void> SelectForm(in Instruction i, delegate*<SoftwareCpu, in Instruction, void> general)
    {
        if (i.HasLockPrefix || i.Op0Kind != OpKind.Register) return general;
        return i.Mnemonic switch
        {
            Mnemonic.Add => Form<AddOp>(in i, general, compare: false),
            Mnemonic.Sub => Form<SubOp>(in i, general, compare: false),
            Mnemonic.And => Form<AndOp>(in i, general, compare: false),
            Mnemonic.Or => Form<OrOp>(in i, general, compare: false),
            Mnemonic.Xor => Form<XorOp>(in i, general, compare: false),
            Mnemonic.Cmp => Form<SubOp>(in i, general, compare: true),
            Mnemonic.Test => Form<AndOp>(in i, general, compare: true),
            _ => general,
        };
    }

    private static delegate*<SoftwareCpu, in Instruction, void> Form<T>(in Instruction i, delegate*<SoftwareCpu, in Instruction, void> general, bool compare)
        where T : struct, IAluOp
    {
        var d = i.Op0Register;
        var wide = d >= Reg.RAX && d <= Reg.R15;
        if (!wide && !(d >= Reg.EAX && d <= Reg.R15D)) return general;
        switch (i.Op1Kind)
        {
            case OpKind.Register:
                var s = i.Op1Register;
                if (wide ? !(s >= Reg.RAX && s <= Reg.R15) : !(s >= Reg.EAX && s <= Reg.R15D)) return general;
                return compare ? (wide ? &CompareRegister64<T> : &CompareRegister32<T>) : (wide ? &Register64<T> : &Register32<T>);
            case OpKind.Immediate8to64 or OpKind.Immediate32to64 when wide:
            case OpKind.Immediate8to32 or OpKind.Immediate32 when !wide:
                return compare ? (wide ? &CompareImmediate64<T> : &CompareImmediate32<T>) : (wide ? &Immediate64<T> : &Immediate32<T>);
            default:
                return general;
        }
    }

    // The immediate as the general ReadOperand produces it: sign-extended to the operand size.
    private static ulong Imm64(in Instruction i) =>
        i.Op1Kind == OpKind.Immediate8to64 ? (ulong)i.Immediate8to64 : (ulong)i.Immediate32to64;

    private static ulong Imm32(in Instruction i) =>
        i.Op1Kind == OpKind.Immediate8to32 ? (uint)i.Immediate8to32 : i.Immediate32;

    private static void Register64<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IAluOp
    {
        ref var dst = ref cpu.GprRef(i.Op0Register - Reg.RAX);
        ulong d = dst, s = cpu.GprRef(i.Op1Register - Reg.RAX), r = T.Compute(d, s, 0);
        dst = r;
        cpu.SetLazy(T.Flags, 8, d, s, r);
    }

    private static void Register32<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IAluOp
    {
        ref var dst = ref cpu.GprRef(i.Op0Register - Reg.EAX);
        ulong d = (uint)dst, s = (uint)cpu.GprRef(i.Op1Register - Reg.EAX), r = T.Compute(d, s, 0);
        dst = (uint)r;
        cpu.SetLazy(T.Flags, 4, d, s, r);
    }

    private static void Immediate64<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IAluOp
    {
        ref var dst = ref cpu.GprRef(i.Op0Register - Reg.RAX);
        ulong d = dst, s = Imm64(in i), r = T.Compute(d, s, 0);
        dst = r;
        cpu.SetLazy(T.Flags, 8, d, s, r);
    }

    private static void Immediate32<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IAluOp
    {
        ref var dst = ref cpu.GprRef(i.Op0Register - Reg.EAX);
        ulong d = (uint)dst, s = Imm32(in i), r = T.Compute(d, s, 0);
        dst = (uint)r;
        cpu.SetLazy(T.Flags, 4, d, s, r);
    }

    // CMP records SUB's operands and result; TEST records AND's result with zero operands, as Cmp/Test do.
    private static void CompareRegister64<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IAluOp =>
        Compare<T>(cpu, 8, cpu.GprRef(i.Op0Register - Reg.RAX), cpu.GprRef(i.Op1Register - Reg.RAX));

    private static void CompareRegister32<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IAluOp =>
        Compare<T>(cpu, 4, (uint)cpu.GprRef(i.Op0Register - Reg.EAX), (uint)cpu.GprRef(i.Op1Register - Reg.EAX));

    private static void CompareImmediate64<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IAluOp =>
        Compare<T>(cpu, 8, cpu.GprRef(i.Op0Register - Reg.RAX), Imm64(in i));

    private static void CompareImmediate32<T>(SoftwareCpu cpu, in Instruction i) where T : struct, IAluOp =>
        Compare<T>(cpu, 4, (uint)cpu.GprRef(i.Op0Register - Reg.EAX), Imm32(in i));

    private static void Compare<T>(SoftwareCpu cpu, int size, ulong d, ulong s) where T : struct, IAluOp
    {
        if (T.Flags == FlagOp.Sub) cpu.SetLazy(FlagOp.Sub, size, d, s, d - s);
        else cpu.SetLazy(FlagOp.Logic, size, 0, 0, T.Compute(d, s, 0));
    }
}
