using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>Segment register loads (MOV/POP/LDS..LSS), with descriptor checks in protected mode.</summary>
internal static unsafe class Segments
{
    public static void Register(Dispatch.HandlerTable t)
    {
    }

    public static void MovSegment(SoftwareCpu cpu, in Instruction i) => cpu.OnUnimplemented(i);
    public static void PushSegment(SoftwareCpu cpu, in Instruction i) => cpu.OnUnimplemented(i);
    public static void PopSegment(SoftwareCpu cpu, in Instruction i) => cpu.OnUnimplemented(i);
}
