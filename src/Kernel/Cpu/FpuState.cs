namespace Actorvisor.Kernel.Cpu;

/// <summary>x87/SSE register state (the x87, MMX and SSE instruction sets come with the Linux-boot issue).</summary>
public sealed partial class SoftwareCpu
{
    /// <summary>XMM0-15 as low/high 64-bit halves.</summary>
    public readonly ulong[] Xmm = new ulong[32];
    public uint Mxcsr = 0x1F80;

    private void ResetFpu()
    {
        Array.Clear(Xmm);
        Mxcsr = 0x1F80;
    }
}
