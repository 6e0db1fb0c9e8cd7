using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

internal static unsafe class Fpu
{
    public static void Register(Dispatch.HandlerTable t)
    {
    }
}
