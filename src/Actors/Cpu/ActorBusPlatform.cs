using Akka.Actor;
using Actorvisor.Kernel.Faults;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Telemetry;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Cpu;

/// <summary>
/// The CPU's way to the devices, for one vCPU: a port or MMIO access is looked up on the bus snapshot and
/// becomes a message to the device actor it names. Writes are posted (<c>Tell</c>); reads block the vCPU
/// thread on the <see cref="AccessReplyTarget"/> until the device answers. Messages from one thread reach
/// a mailbox in the order sent, so a device sees a vCPU's writes and reads in program order.
/// Addresses no device claims behave as an empty ISA bus: reads return all ones, writes vanish; both are counted.
/// Used only on the vCPU's run thread (except <see cref="Bus"/>, which is swapped atomically).
/// </summary>
/// <summary>
/// An MMIO window served on the vCPU thread itself, ahead of the bus (the LAPIC page: every vCPU has its own
/// at the same address, so it cannot be one bus range).
/// </summary>
public interface ILocalMmio
{
    bool TryMmioRead(ulong address, int size, out ulong value);
    bool TryMmioWrite(ulong address, int size, ulong value);
}

public sealed class ActorBusPlatform : ICpuPlatform, IDisposable
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
    public ActorBusPlatform(ActorSystem system, IoBus<IActorRef> bus, IActorRef self, TimeSpan readTimeout)
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

    /// <summary>The fault-injection engine every device access is decided by; none when null.</summary>
    public Actorvisor.Kernel.Faults.FaultEngine? Faults { get; set; }

    /// <summary>In the deterministic schedule, every device access and its value is added here.</summary>
    public Deterministic.RunDigest? Digest { get; set; }

    /// <summary>Exit counts and, while telemetry is on, per-device counts and spans (BusAccessTelemetry.cs).</summary>
    public BusAccessTelemetry Telemetry
    {
        get => _telemetry;
        set
        {
            _telemetry = value;
            _exits = value.Metrics.Exits;
        }
    }
    private BusAccessTelemetry _telemetry = new(VcpuMetrics.Detached);
    private long[] _exits = VcpuMetrics.Detached.Exits;

    /// <summary>This vCPU's own MMIO window (its LAPIC), looked at before the bus; none when null.</summary>
    public ILocalMmio? Local { get; set; }

    public uint PortRead(int vcpuId, ushort port, int size)
    {
        _exits[(int)ExitReason.Pio]++;
        if (!_bus.Pio.TryFind(port, (ulong)size, out var hit))
        {
            UnassignedPortReads++;
            return (uint)AllOnes(size);
        }
        var fault = Faults is { Active: true } faults ? DecideRead(faults, FaultKind.PioRead, hit.Target, port, size) : FaultDecision.Pass;
        if (fault.Verdict is FaultVerdict.Drop or FaultVerdict.Crash) return (uint)AllOnes(size);
        var observed = TraceSwitches.BusActive ? _telemetry.Begin(hit.Target, vcpuId, true, port, size, false, 0) : default;
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var v = _reply.Request(hit.Target, new PioRead(port, (ushort)hit.Offset, (byte)size, vcpuId), ReadTimeout, Cancel,
            () => $"vcpu {vcpuId}: read of port 0x{port:x} ({size} bytes)");
        CountRead(start);
        if (observed.Start != 0) _telemetry.End(observed, ExitReason.Pio, v & AllOnes(size));
        v = fault.ApplyToRead(v, AllOnes(size));
        Digest?.Add(Deterministic.RunDigest.Kind.PortRead, vcpuId, port, size, v & AllOnes(size));
        return (uint)(v & AllOnes(size));
    }

    public void PortWrite(int vcpuId, ushort port, int size, uint value)
    {
        _exits[(int)ExitReason.Pio]++;
        if (!_bus.Pio.TryFind(port, (ulong)size, out var hit))
        {
            UnassignedPortWrites++;
            return;
        }
        Digest?.Add(Deterministic.RunDigest.Kind.PortWrite, vcpuId, port, size, value & AllOnes(size));
        var observed = TraceSwitches.BusActive ? _telemetry.Begin(hit.Target, vcpuId, true, port, size, true, value & AllOnes(size)) : default;
        var message = new PioWrite(port, (ushort)hit.Offset, (byte)size, (uint)(value & AllOnes(size)), vcpuId);
        if (Faults is { Active: true } faults) WriteWithFaults(faults, FaultKind.PioWrite, hit.Target, port, size, value, message,
            v => message with { Value = (uint)(v & AllOnes(size)) });
        else hit.Target.Tell(message, _self);
        if (observed.Start != 0) _telemetry.End(observed, ExitReason.Pio, null);
    }

    public ulong MmioRead(int vcpuId, ulong address, int size)
    {
        if (Local is { } local && local.TryMmioRead(address, size, out var localValue)) return localValue;
        _exits[(int)ExitReason.Mmio]++;
        if (!_bus.Mmio.TryFind(address, (ulong)size, out var hit))
        {
            UnassignedMmioReads++;
            return AllOnes(size);
        }
        var fault = Faults is { Active: true } faults ? DecideRead(faults, FaultKind.MmioRead, hit.Target, address, size) : FaultDecision.Pass;
        if (fault.Verdict is FaultVerdict.Drop or FaultVerdict.Crash) return AllOnes(size);
        var observed = TraceSwitches.BusActive ? _telemetry.Begin(hit.Target, vcpuId, false, address, size, false, 0) : default;
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var v = _reply.Request(hit.Target, new MmioRead(address, hit.Offset, (byte)size, vcpuId), ReadTimeout, Cancel,
            () => $"vcpu {vcpuId}: read of MMIO 0x{address:x} ({size} bytes)");
        CountRead(start);
        if (observed.Start != 0) _telemetry.End(observed, ExitReason.Mmio, v & AllOnes(size));
        v = fault.ApplyToRead(v, AllOnes(size));
        Digest?.Add(Deterministic.RunDigest.Kind.MmioRead, vcpuId, address, size, v & AllOnes(size));
        return v & AllOnes(size);
    }

    public void MmioWrite(int vcpuId, ulong address, int size, ulong value)
    {
        if (Local is { } local && local.TryMmioWrite(address, size, value)) return;
        _exits[(int)ExitReason.Mmio]++;
        if (!_bus.Mmio.TryFind(address, (ulong)size, out var hit))
        {
            UnassignedMmioWrites++;
            return;
        }
        Digest?.Add(Deterministic.RunDigest.Kind.MmioWrite, vcpuId, address, size, value & AllOnes(size));
        var observed = TraceSwitches.BusActive ? _telemetry.Begin(hit.Target, vcpuId, false, address, size, true, value & AllOnes(size)) : default;
        var message = new MmioWrite(address, hit.Offset, (byte)size, value & AllOnes(size), vcpuId);
        if (Faults is { Active: true } faults) WriteWithFaults(faults, FaultKind.MmioWrite, hit.Target, address, size, value, message,
            v => message with { Value = v & AllOnes(size) });
        else hit.Target.Tell(message, _self);
        if (observed.Start != 0) _telemetry.End(observed, ExitReason.Mmio, null);
    }

    /// <summary>A read the engine decided about: a crash is delivered now (the read then goes unanswered, all ones).</summary>
    private static FaultDecision DecideRead(FaultEngine faults, FaultKind kind, IActorRef device, ulong address, int size)
    {
        var d = faults.Decide(new FaultPoint(kind, device.Path.Name, address), size);
        if (d.Verdict == FaultVerdict.Crash) device.Tell(Kill.Instance);
        return d;
    }

    /// <summary>A write through the fault engine: lost, late, twice, changed, or a crash of the device instead.</summary>
    private void WriteWithFaults(FaultEngine faults, FaultKind kind, IActorRef device, ulong address, int size, ulong value,
        object message, Func<ulong, object> withValue)
    {
        var d = faults.Decide(new FaultPoint(kind, device.Path.Name, address, value & AllOnes(size)), size);
        switch (d.Verdict)
        {
            case FaultVerdict.Drop:
                return;
            case FaultVerdict.Crash:
                device.Tell(Kill.Instance);
                return;
            case FaultVerdict.Delay:
                var self = _self;
                faults.Later(d.Delay, () => device.Tell(message, self));
                return;
            case FaultVerdict.Duplicate:
                device.Tell(message, _self);
                device.Tell(message, _self);
                return;
            case FaultVerdict.Replace or FaultVerdict.Corrupt:
                device.Tell(withValue(d.ApplyToValue(value & AllOnes(size))), _self);
                return;
            default:
                device.Tell(message, _self);
                return;
        }
    }

    private void CountRead(long start)
    {
        DeviceReads++;
        DeviceReadWaitTicks += System.Diagnostics.Stopwatch.GetTimestamp() - start;
    }

    private static ulong AllOnes(int size) => size >= 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    public void Dispose() => _reply.Dispose();
}
