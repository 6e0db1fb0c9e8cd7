using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// PUSH r64 and POP r64, chosen per decoded instruction when its block is built: these encodings exist only
/// in 64-bit mode, where the stack-address size is 64 bits and the push or pop size 8, so the general
/// <c>Stack.Push/Pop</c> need not ask Iced and the mode for them on every execution (they are the most
/// common instructions the interpreter runs in a Linux boot).
/// </summary>
internal static unsafe class StackForms
{
    /// <summary>The specialised handler for this instruction, or <paramref name="general"/>.</summary>
    public static delegate*<SoftwareCpu, in Instruction, void> Select(in Instruction i, delegate*<SoftwareCpu, in Instruction, void> general) =>
        i.Code switch
        {
            Code.Push_r64 => &PushReg64,
            Code.Pop_r64 => &PopReg64,
            _ => general,
        };

    /// <summary>PUSH r64: the value is read before RSP moves (PUSH RSP pushes the old RSP); RSP moves once the write succeeded.</summary>
    private static void PushReg64(SoftwareCpu cpu, in Instruction i)
    {
        var g = cpu.Gprs;
        var value = g[i.Op0Register - Register.RAX];
        var sp = g[Gpr.RSP] - 8;
        cpu.WriteMem(Seg.SS, sp, 8, value);
        g[Gpr.RSP] = sp;
    }

    /// <summary>POP r64: RSP moves after the read, then the register is written (POP RSP leaves the value read).</summary>
    private static void PopReg64(SoftwareCpu cpu, in Instruction i)
    {
        var g = cpu.Gprs;
        var sp = g[Gpr.RSP];
        var value = cpu.ReadMem(Seg.SS, sp, 8);
        g[Gpr.RSP] = sp + 8;
        g[i.Op0Register - Register.RAX] = value;
    }
}
