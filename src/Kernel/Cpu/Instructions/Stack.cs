using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>PUSH, POP, PUSHA/POPA, ENTER, LEAVE (PUSHF/POPF live with the flag instructions).</summary>
internal static unsafe class Stack
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Push, &Push);
        t.Set(Mnemonic.Pop, &Pop);
    }

    private static void Push(SoftwareCpu cpu, in Instruction i)
    {
        if (i.Op0Kind == OpKind.Register && i.Op0Register.IsSegmentRegister())
        {
            Segments.PushSegment(cpu, in i);
            return;
        }
        var size = i.StackPointerIncrement < 0 ? -i.StackPointerIncrement : SoftwareCpu.OperandSize(in i, 0);
        var v = cpu.ReadOperand(in i, 0);
        cpu.Push(v, size);
    }

    private static void Pop(SoftwareCpu cpu, in Instruction i)
    {
        if (i.Op0Kind == OpKind.Register && i.Op0Register.IsSegmentRegister())
        {
            Segments.PopSegment(cpu, in i);
            return;
        }
        var size = i.StackPointerIncrement;
        var v = cpu.PeekStack(0, size);
        // POP [rsp+x] computes its address with RSP already incremented (SDM POP).
        var oldSp = cpu.Gprs[Gpr.RSP];
        cpu.SetStackPointer(oldSp + (ulong)size);
        try { cpu.WriteOperand(in i, 0, v); }
        catch (CpuFault) { cpu.Gprs[Gpr.RSP] = oldSp; throw; }
    }
}
