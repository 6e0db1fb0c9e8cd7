using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>Two-operand integer arithmetic and logic: ADD, ADC, SUB, SBB, CMP, AND, OR, XOR, TEST, INC, DEC, NEG, NOT.</summary>
internal static unsafe class Alu
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Add, &Add);
        t.Set(Mnemonic.Sub, &Sub);
        t.Set(Mnemonic.Cmp, &Cmp);
        t.Set(Mnemonic.And, &And);
        t.Set(Mnemonic.Or, &Or);
        t.Set(Mnemonic.Xor, &Xor);
        t.Set(Mnemonic.Test, &Test);
        t.Set(Mnemonic.Inc, &Inc);
        t.Set(Mnemonic.Dec, &Dec);
    }

    private static void Add(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var d = cpu.ReadForUpdate(in i, out var la);
        var s = cpu.ReadOperand(in i, 1);
        var r = d + s;
        cpu.CompleteUpdate(in i, la, r);
        cpu.SetLazy(FlagOp.Add, size, d, s, r);
    }

    private static void Sub(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var d = cpu.ReadForUpdate(in i, out var la);
        var s = cpu.ReadOperand(in i, 1);
        var r = d - s;
        cpu.CompleteUpdate(in i, la, r);
        cpu.SetLazy(FlagOp.Sub, size, d, s, r);
    }

    private static void Cmp(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var d = cpu.ReadOperand(in i, 0);
        var s = cpu.ReadOperand(in i, 1);
        cpu.SetLazy(FlagOp.Sub, size, d, s, d - s);
    }

    private static void And(SoftwareCpu cpu, in Instruction i) => Logic(cpu, in i, 0);
    private static void Or(SoftwareCpu cpu, in Instruction i) => Logic(cpu, in i, 1);
    private static void Xor(SoftwareCpu cpu, in Instruction i) => Logic(cpu, in i, 2);

    private static void Logic(SoftwareCpu cpu, in Instruction i, int op)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var d = cpu.ReadForUpdate(in i, out var la);
        var s = cpu.ReadOperand(in i, 1);
        var r = op == 0 ? d & s : op == 1 ? d | s : d ^ s;
        cpu.CompleteUpdate(in i, la, r);
        cpu.SetLazy(FlagOp.Logic, size, d, s, r);
    }

    private static void Test(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var r = cpu.ReadOperand(in i, 0) & cpu.ReadOperand(in i, 1);
        cpu.SetLazy(FlagOp.Logic, size, 0, 0, r);
    }

    private static void Inc(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var d = cpu.ReadForUpdate(in i, out var la);
        var r = d + 1;
        cpu.CompleteUpdate(in i, la, r);
        cpu.SetLazyIncDec(false, size, d, r);
    }

    private static void Dec(SoftwareCpu cpu, in Instruction i)
    {
        var size = SoftwareCpu.OperandSize(in i, 0);
        var d = cpu.ReadForUpdate(in i, out var la);
        var r = d - 1;
        cpu.CompleteUpdate(in i, la, r);
        cpu.SetLazyIncDec(true, size, d, r);
    }
}
