using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>MOV and its relatives: MOVZX/MOVSX/MOVSXD, LEA, XCHG, CMOVcc, SETcc, BSWAP, NOP, CBW family.</summary>
internal static unsafe class DataMove
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Mov, &Mov);
        t.Set(Mnemonic.Movzx, &Movzx);
        t.Set(Mnemonic.Movsx, &Movsx);
        t.Set(Mnemonic.Movsxd, &Movsx);
        t.Set(Mnemonic.Lea, &Lea);
        t.Set(Mnemonic.Nop, &Nop);
        t.Set(Mnemonic.Pause, &Nop);
    }

    private static void Nop(SoftwareCpu cpu, in Instruction i) { }

    private static void Mov(SoftwareCpu cpu, in Instruction i)
    {
        // MOV to/from segment, control and debug registers lives with those groups.
        if (i.Op0Kind == OpKind.Register && i.Op0Register.IsSegmentRegister() ||
            i.Op1Kind == OpKind.Register && i.Op1Register.IsSegmentRegister())
        {
            Segments.MovSegment(cpu, in i);
            return;
        }
        if (i.Op0Kind == OpKind.Register && (i.Op0Register.IsCR() || i.Op0Register.IsDR()) ||
            i.Op1Kind == OpKind.Register && (i.Op1Register.IsCR() || i.Op1Register.IsDR()))
        {
            SystemInstructions.MovControl(cpu, in i);
            return;
        }
        cpu.WriteOperand(in i, 0, cpu.ReadOperand(in i, 1));
    }

    private static void Movzx(SoftwareCpu cpu, in Instruction i) => cpu.WriteGpr(i.Op0Register, cpu.ReadOperand(in i, 1));

    private static void Movsx(SoftwareCpu cpu, in Instruction i)
    {
        var srcSize = SoftwareCpu.OperandSize(in i, 1);
        cpu.WriteGpr(i.Op0Register, (ulong)SoftwareCpu.SignExtend(cpu.ReadOperand(in i, 1), srcSize));
    }

    private static void Lea(SoftwareCpu cpu, in Instruction i) => cpu.WriteGpr(i.Op0Register, cpu.EffectiveAddress(in i));
}
