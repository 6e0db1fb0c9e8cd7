using Akka.Actor;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Cpu;
using static Actorvisor.Kernel.Messages.AccessProtocol;

using Actorvisor.Actors.Cpu;

namespace Actorvisor.Bench;

/// <summary>
/// The CPU's way to the devices, for one vCPU: a port or MMIO access is looked up on the bus snapshot and
/// becomes a message to the device actor it names. Writes are posted (<c>Tell</c>); reads block the vCPU
/// thread on the <see cref="AccessReplyTarget"/> until the device answers. Messages from one thread reach
/// a mailbox in the order sent, so a device sees a vCPU's writes and reads in program order.
/// Addresses no device claims behave as an empty ISA bus: reads return all ones, writes vanish; both are counted.
/// Used only on the vCPU's run thread (except <see cref="Bus"/>, which is swapped atomically).
/// </summary>
/// <summary>ActorBusPlatform as it was before telemetry (bdf62ec), kept only to time the access path without it.</summary>
internal sealed class BaselineBusPlatform : ICpuPlatform, IDisposable
{
    private readonly AccessReplyTarget _reply;
    private readonly IActorRef _self;
    private volatile IoBus<IActorRef> _bus;

    public TimeSpan ReadTimeout { get; }
    /// <summary>Cancelled when the vCPU stops, so a read that waits on a device gives up.</summary>
    public CancellationToken Cancel { get; set; }

    public long UnassignedPortReads { get; private set; }
    public long UnassignedPortWrites { get; private set; }
    public long UnassignedMmioReads { get; private set; }
    public long UnassignedMmioWrites { get; private set; }
    /// <summary>Reads answered by a device actor, and the time the vCPU spent waiting for those answers (Stopwatch ticks).</summary>
    public long DeviceReads { get; private set; }
    public long DeviceReadWaitTicks { get; private set; }

    /// <param name="self">The vCPU actor: the sender of posted writes.</param>
    public BaselineBusPlatform(ActorSystem system, IoBus<IActorRef> bus, IActorRef self, TimeSpan readTimeout)
    {
        _reply = new AccessReplyTarget(system);
        _bus = bus;
        _self = self;
        ReadTimeout = readTimeout;
    }

    public IoBus<IActorRef> Bus
    {
        get => _bus;
        set => _bus = value;
    }

    public AccessReplyTarget ReplyTarget => _reply;

    /// <summary>This vCPU's own MMIO window (its LAPIC), looked at before the bus; none when null.</summary>
    public ILocalMmio? Local { get; set; }

    public uint PortRead(int vcpuId, ushort port, int size)
    {
        if (!_bus.Pio.TryFind(port, (ulong)size, out var hit))
        {
            UnassignedPortReads++;
            return (uint)AllOnes(size);
        }
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var v = _reply.Request(hit.Target, new PioRead(port, (ushort)hit.Offset, (byte)size, vcpuId), ReadTimeout, Cancel,
            () => $"vcpu {vcpuId}: read of port 0x{port:x} ({size} bytes)");
        CountRead(start);
        return (uint)(v & AllOnes(size));
    }

    public void PortWrite(int vcpuId, ushort port, int size, uint value)
    {
        if (!_bus.Pio.TryFind(port, (ulong)size, out var hit))
        {
            UnassignedPortWrites++;
            return;
        }
        hit.Target.Tell(new PioWrite(port, (ushort)hit.Offset, (byte)size, (uint)(value & AllOnes(size)), vcpuId), _self);
    }

    public ulong MmioRead(int vcpuId, ulong address, int size)
    {
        if (Local is { } local && local.TryMmioRead(address, size, out var localValue)) return localValue;
        if (!_bus.Mmio.TryFind(address, (ulong)size, out var hit))
        {
            UnassignedMmioReads++;
            return AllOnes(size);
        }
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var v = _reply.Request(hit.Target, new MmioRead(address, hit.Offset, (byte)size, vcpuId), ReadTimeout, Cancel,
            () => $"vcpu {vcpuId}: read of MMIO 0x{address:x} ({size} bytes)");
        CountRead(start);
        return v & AllOnes(size);
    }

    public void MmioWrite(int vcpuId, ulong address, int size, ulong value)
    {
        if (Local is { } local && local.TryMmioWrite(address, size, value)) return;
        if (!_bus.Mmio.TryFind(address, (ulong)size, out var hit))
        {
            UnassignedMmioWrites++;
            return;
        }
        hit.Target.Tell(new MmioWrite(address, hit.Offset, (byte)size, value & AllOnes(size), vcpuId), _self);
    }

    private void CountRead(long start)
    {
        DeviceReads++;
        DeviceReadWaitTicks += System.Diagnostics.Stopwatch.GetTimestamp() - start;
    }

    private static ulong AllOnes(int size) => size >= 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    public void Dispose() => _reply.Dispose();
}

