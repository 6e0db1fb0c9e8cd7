using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>System instructions: HLT, CLI/STI, MOV CR/DR, LGDT/LIDT/SGDT/SIDT, LMSW/SMSW, CLTS, INVLPG, WBINVD, ...</summary>
internal static unsafe class SystemInstructions
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Hlt, &Hlt);
        t.Set(Mnemonic.Cli, &Cli);
        t.Set(Mnemonic.Sti, &Sti);
    }

    private static void Hlt(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        cpu.Halted = true;
        cpu.EndBlock = true;
    }

    private static void Cli(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.ProtectedMode && (cpu.V86Mode ? cpu.Iopl < 3 : cpu.Cpl > cpu.Iopl)) throw CpuFault.General(0);
        cpu.FlagsRest &= ~RFlags.IF;
    }

    private static void Sti(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.ProtectedMode && (cpu.V86Mode ? cpu.Iopl < 3 : cpu.Cpl > cpu.Iopl)) throw CpuFault.General(0);
        if ((cpu.FlagsRest & RFlags.IF) == 0)
        {
            cpu.FlagsRest |= RFlags.IF;
            // Interrupts stay blocked until after the next instruction (STI shadow).
            cpu.InterruptShadow = true;
        }
        cpu.EndBlock = true;
    }

    /// <summary>MOV to or from CR0-CR8 and DR0-DR7.</summary>
    public static void MovControl(SoftwareCpu cpu, in Instruction i) => cpu.OnUnimplemented(i);
}
