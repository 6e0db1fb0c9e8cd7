using System.Diagnostics.Metrics;
using static Actorvisor.Kernel.Telemetry.TelemetryAttributes;

namespace Actorvisor.Kernel.Telemetry;

/// <summary>
/// The instruments of Meter "Actorvisor". Counts kept by the vCPU threads (<see cref="VcpuMetrics"/>) are read
/// by observable instruments, so counting costs an increment; counts of every vCPU that ever ran stay (a VM
/// rebuilt on reboot under the same name adds to the same series). Histograms record only while a listener
/// is there (<see cref="Instrument.Enabled"/>).
/// </summary>
public static class VmMeters
{
    private static readonly object Gate = new();
    private static VcpuMetrics[] _all = [];

    private static readonly string[] ExitNames = Enum.GetNames<ExitReason>().Select(n => n.ToLowerInvariant()).ToArray();

    /// <summary>Bucket bounds (seconds) for exit and interrupt latencies: 1 µs to 100 ms.</summary>
    public static readonly double[] LatencyBuckets =
        [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 1e-1];

    /// <summary>Exit-handling latency: a device read's round trip (a posted write is handled once queued; tag exit.reason).</summary>
    public static readonly Histogram<double> ExitDuration = ActorvisorTelemetry.Meter.CreateHistogram(
        "actorvisor.exit.duration", "s", "Time a vCPU waited for a device to answer a read",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

    /// <summary>Line assertions (and MSIs) by the device that raised them and the GSI.</summary>
    public static readonly Counter<long> InterruptsRaised = ActorvisorTelemetry.Meter.CreateCounter<long>(
        "actorvisor.interrupts.raised", "{interrupt}", "Interrupt lines raised (rising edges and pulses) and MSIs sent, by GSI");

    static VmMeters()
    {
        var m = ActorvisorTelemetry.Meter;
        m.CreateObservableCounter("actorvisor.vcpu.exits", ObserveExits, "{exit}", "vCPU exits to the VMM by reason");
        m.CreateObservableCounter("actorvisor.device.accesses", ObserveAccesses, "{access}", "Port and MMIO accesses per device and direction");
        m.CreateObservableCounter("actorvisor.interrupts.injected", ObserveVectors, "{interrupt}", "External interrupts taken by a vCPU, per vector");
        m.CreateObservableCounter("actorvisor.vcpu.time", ObserveTime, "s", "vCPU time running guest code and parked in HLT");
    }

    /// <summary>Exit names as exported (exit.reason values).</summary>
    public static string ExitName(ExitReason r) => ExitNames[(int)r];

    public static void Register(VcpuMetrics metrics)
    {
        lock (Gate) _all = [.. _all, metrics];
    }

    public static IReadOnlyList<VcpuMetrics> All => _all;

    /// <summary>Records a device exit's duration when someone listens.</summary>
    public static void RecordExit(ExitReason reason, long startTicks, long endTicks)
    {
        if (!ExitDuration.Enabled) return;
        ExitDuration.Record(VcpuMetrics.Seconds(endTicks - startTicks), new KeyValuePair<string, object?>(TelemetryAttributes.ExitReason, ExitNames[(int)reason]));
    }

    private static IEnumerable<Measurement<long>> ObserveExits()
    {
        var sums = new Dictionary<(string, int, int), long>();
        foreach (var v in _all)
            for (var r = 0; r < VcpuMetrics.ExitReasonCount; r++)
                if (v.Exits[r] != 0) Add(sums, (v.Vm, v.Vcpu, r), v.Exits[r]);
        return sums.Select(s => new Measurement<long>(s.Value, Tag(VmName, s.Key.Item1), Tag(VcpuId, s.Key.Item2),
            Tag(TelemetryAttributes.ExitReason, ExitNames[s.Key.Item3])));
    }

    private static IEnumerable<Measurement<long>> ObserveAccesses()
    {
        var sums = new Dictionary<(string, string, bool), long>();
        foreach (var v in _all)
            foreach (var d in v.Devices)
            {
                if (d.Reads != 0) Add(sums, (v.Vm, d.Device, false), d.Reads);
                if (d.Writes != 0) Add(sums, (v.Vm, d.Device, true), d.Writes);
            }
        return sums.Select(s => new Measurement<long>(s.Value, Tag(VmName, s.Key.Item1), Tag(DeviceName, s.Key.Item2),
            Tag(IoDirection, s.Key.Item3 ? "write" : "read")));
    }

    private static IEnumerable<Measurement<long>> ObserveVectors()
    {
        var sums = new Dictionary<(string, int, int), long>();
        foreach (var v in _all)
            for (var i = 0; i < 256; i++)
                if (v.Vectors[i] != 0) Add(sums, (v.Vm, v.Vcpu, i), v.Vectors[i]);
        return sums.Select(s => new Measurement<long>(s.Value, Tag(VmName, s.Key.Item1), Tag(VcpuId, s.Key.Item2), Tag(IrqVector, s.Key.Item3)));
    }

    private static IEnumerable<Measurement<double>> ObserveTime()
    {
        var sums = new Dictionary<(string, int, bool), long>();
        foreach (var v in _all)
        {
            Add(sums, (v.Vm, v.Vcpu, false), v.RunTicks);
            Add(sums, (v.Vm, v.Vcpu, true), v.HaltTicks);
        }
        return sums.Select(s => new Measurement<double>(VcpuMetrics.Seconds(s.Value), Tag(VmName, s.Key.Item1), Tag(VcpuId, s.Key.Item2),
            Tag(VcpuState, s.Key.Item3 ? "halt" : "run")));
    }

    private static void Add<TKey>(Dictionary<TKey, long> sums, TKey key, long value) where TKey : notnull =>
        sums[key] = sums.GetValueOrDefault(key) + value;

    private static KeyValuePair<string, object?> Tag(string name, object? value) => new(name, value);
}
