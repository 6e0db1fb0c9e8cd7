using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

internal static unsafe class Strings
{
    public static void Register(Dispatch.HandlerTable t)
    {
    }
}
