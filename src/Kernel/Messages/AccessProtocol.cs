using System.Diagnostics;

namespace Actorvisor.Kernel.Messages;

/// <summary>
/// Port and MMIO accesses from a vCPU to the device the bus names. Reads always get an
/// <see cref="AccessResult"/>. <c>Offset</c> is the offset inside the device's range (devices never learn
/// their own address); <c>Address</c> is kept for tracing. <c>VcpuId</c> lets per-CPU devices (the LAPIC)
/// tell their callers apart.
/// </summary>
public static class AccessProtocol
{
    public sealed record PioRead(ushort Port, ushort Offset, byte Size, int VcpuId, ActivityContext Trace = default);
    public sealed record PioWrite(ushort Port, ushort Offset, byte Size, uint Value, int VcpuId, ActivityContext Trace = default);
    public sealed record MmioRead(ulong Address, ulong Offset, byte Size, int VcpuId, ActivityContext Trace = default);
    public sealed record MmioWrite(ulong Address, ulong Offset, byte Size, ulong Value, int VcpuId, ActivityContext Trace = default);
    public sealed record AccessResult(ulong Value);
}
