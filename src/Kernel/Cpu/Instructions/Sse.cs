namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>The MMX/SSE/SSE2 families (one file each); operand access in <see cref="Simd"/>.</summary>
internal static unsafe class Sse
{
    public static void Register(Dispatch.HandlerTable t)
    {
        SseMove.Register(t);
        SseInteger.Register(t);
        SseFloat.Register(t);
        SseConvert.Register(t);
        SseApprox.Register(t);
    }
}
