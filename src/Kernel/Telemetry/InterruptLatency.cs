using System.Diagnostics;
using static Actorvisor.Kernel.Telemetry.TelemetryAttributes;

namespace Actorvisor.Kernel.Telemetry;

/// <summary>
/// Interrupt latency (assert → injection) for interrupts that are not traced: the source stamps the interrupt
/// message with the time it raised the line (<see cref="Stamp"/>, a Stopwatch timestamp; 0 when nobody listens
/// to the histogram), the routing actors copy the stamp onto what they send, the LAPIC keeps it per pending
/// vector (or for the pending ExtINT), and the vCPU records the time since it when it takes the vector.
/// Traced interrupts are recorded by <see cref="InterruptTrace.Inject"/> instead, with their GSI.
/// </summary>
public static class InterruptLatency
{
    /// <summary>The raise time to put in an interrupt message: now when metrics are collected and the histogram is listened to, else 0.</summary>
    public static long Stamp() =>
        (TraceSwitches.Active & TraceSwitches.Kinds.Metrics) != 0 && InterruptTrace.Latency.Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>The vCPU took <paramref name="vector"/>, raised at <paramref name="raised"/> (0: not stamped).</summary>
    public static void Record(string vm, int vector, long raised)
    {
        if (raised == 0 || !InterruptTrace.Latency.Enabled) return;
        InterruptTrace.Latency.Record(Stopwatch.GetElapsedTime(raised).TotalSeconds,
            new KeyValuePair<string, object?>(VmName, vm), new KeyValuePair<string, object?>(IrqVector, vector));
    }
}
