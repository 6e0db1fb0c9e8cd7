using System.Diagnostics;

namespace Actorvisor.Kernel.Telemetry;

/// <summary>Why the CPU left guest code for the VMM (the software CPU's equivalent of a VM exit).</summary>
public enum ExitReason
{
    /// <summary>A port access that reached a device (or nothing).</summary>
    Pio,
    /// <summary>An MMIO access sent to a device (or nothing).</summary>
    Mmio,
    /// <summary>An access to the vCPU's own LAPIC page, served on its thread.</summary>
    Lapic,
    /// <summary>HLT (or wait-for-SIPI): the thread parked until an interrupt or a command.</summary>
    Halt,
    /// <summary>The interrupt window: an external interrupt taken and injected.</summary>
    Interrupt,
    /// <summary>Kicked out of its run loop (a command, an INIT, a wake-up).</summary>
    Kick,
    /// <summary>PAUSE, with bhyve's pause_exit capability on.</summary>
    Pause,
    /// <summary>An instruction retired with the mtrap_exit capability on (one exit per instruction).</summary>
    Mtrap,
}

/// <summary>One device's access counts from one vCPU.</summary>
public sealed class DeviceAccessCounter(string device)
{
    public string Device { get; } = device;
    /// <summary>The device's io.* event class, cached for the trace switch.</summary>
    public EventClass IoClass { get; } = new("io." + device);
    public long Reads;
    public long Writes;
}

/// <summary>
/// The counters of one vCPU, written only by its run thread with plain increments (no locks, no allocation) and
/// read by the observable instruments in <see cref="VmMeters"/> from the exporter's thread: a reader may see a
/// count one event late, never a torn one (64-bit fields on a 64-bit host).
/// </summary>
public sealed class VcpuMetrics
{
    public const int ExitReasonCount = (int)ExitReason.Mtrap + 1;

    public string Vm { get; }
    public int Vcpu { get; }
    public readonly long[] Exits = new long[ExitReasonCount];
    /// <summary>External interrupts taken, per vector.</summary>
    public readonly long[] Vectors = new long[256];
    /// <summary>Time running guest code and time parked in HLT, in Stopwatch ticks.</summary>
    public long RunTicks, HaltTicks;

    private readonly object _addGate = new();
    private object[] _keys = [];
    private DeviceAccessCounter[] _devices = [];
    private object? _lastKey;
    private DeviceAccessCounter? _last;

    /// <summary>Counts of a vCPU built outside a VM (unit tests): kept nowhere, reported by nobody.</summary>
    public static readonly VcpuMetrics Detached = new("", -1, register: false);

    public VcpuMetrics(string vm, int vcpu) : this(vm, vcpu, register: true) { }

    private VcpuMetrics(string vm, int vcpu, bool register)
    {
        Vm = vm;
        Vcpu = vcpu;
        if (register) VmMeters.Register(this);
    }

    /// <summary>The counter of the device <paramref name="key"/> (its bus target); null the first time.</summary>
    public DeviceAccessCounter? Device(object key)
    {
        if (ReferenceEquals(key, _lastKey)) return _last;
        var keys = _keys;
        for (var i = 0; i < keys.Length; i++)
        {
            if (!ReferenceEquals(keys[i], key)) continue;
            _lastKey = key;
            return _last = _devices[i];
        }
        return null;
    }

    /// <summary>Adds a device the first time this vCPU touches it (copy on write, so readers need no lock).</summary>
    public DeviceAccessCounter AddDevice(object key, string name)
    {
        lock (_addGate)
        {
            var c = new DeviceAccessCounter(name);
            _devices = [.. _devices, c];
            _keys = [.. _keys, key];
            _lastKey = key;
            return _last = c;
        }
    }

    public IReadOnlyList<DeviceAccessCounter> Devices => _devices;

    public static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;
}
