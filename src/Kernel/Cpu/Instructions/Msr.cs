using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

internal static unsafe class Msr
{
    public static void Register(Dispatch.HandlerTable t)
    {
    }
}
