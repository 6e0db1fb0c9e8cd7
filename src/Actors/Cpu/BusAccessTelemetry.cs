using System.Diagnostics;
using Akka.Actor;
using Actorvisor.Kernel.Telemetry;

namespace Actorvisor.Actors.Cpu;

/// <summary>
/// The telemetry of one vCPU's bus accesses. <see cref="ActorBusPlatform"/> counts each exit with one array
/// increment and calls <see cref="Begin"/>/<see cref="End"/> only when <see cref="TraceSwitches.Active"/> is
/// non-zero: then it counts the access per device (metrics on), records the exit's duration, and opens a span
/// when the device's <c>io.*</c> class is on and the access is sampled in.
/// </summary>
public sealed class BusAccessTelemetry(VcpuMetrics metrics)
{
    public VcpuMetrics Metrics { get; } = metrics;

    /// <summary>What <see cref="Begin"/> started: a span (or none), and the start time of a timed read (else 1).</summary>
    public readonly record struct Observation(Activity? Span, long Start, bool Timed);

    public Observation Begin(IActorRef device, int vcpu, bool port, ulong address, int size, bool write, ulong value)
    {
        var active = TraceSwitches.Active;
        var counter = Metrics.Device(device) ?? Metrics.AddDevice(device, device.Path.Name);
        var metrics = (active & TraceSwitches.Kinds.Metrics) != 0;
        if (metrics)
        {
            if (write) counter.Writes++;
            else counter.Reads++;
        }
        var span = (active & TraceSwitches.Kinds.Io) != 0
            ? IoTrace.Start(counter.IoClass, Metrics.Vm, vcpu, counter.Device, port, address, size, write, value)
            : null;
        // A posted write is handled when the message is queued: only a read's round trip is worth timing.
        var timed = metrics && !write;
        return new Observation(span, timed ? Stopwatch.GetTimestamp() : 1, timed);
    }

    public void End(in Observation o, ExitReason reason, ulong? readValue)
    {
        if (o.Timed) VmMeters.RecordExit(reason, o.Start, Stopwatch.GetTimestamp());
        if (o.Span is { } span) IoTrace.End(span, readValue);
    }
}
