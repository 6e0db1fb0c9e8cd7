using System.Diagnostics;
using Akka.Actor;
using Actorvisor.Kernel.Telemetry;
using static Actorvisor.Kernel.Telemetry.TelemetryAttributes;

namespace Actorvisor.Actors.Devices;

/// <summary>
/// What a device's interrupt output adds for telemetry: the count of raised lines per GSI (always, for
/// <see cref="TelemetrySnapshot"/>; as the metric when metrics are on)
/// and, when its class <c>irq.&lt;device&gt;</c> is traced, the root of the interrupt's trace, whose context the
/// caller puts in the message. Costs one increment and one field read when telemetry is off.
/// </summary>
public sealed class InterruptSourceTelemetry(IActorRef device)
{
    private string? _device, _vm;
    private EventClass? _class;
    private long[]? _counts;

    private string DeviceName => _device ??= device.Path.Name;
    private string Vm => _vm ??= TelemetryNames.VmFromSupervisor(device.Path.Parent.Name);

    /// <summary>A line rises or pulses (or an MSI goes out: <paramref name="gsi"/> -1): the trace context for the message.</summary>
    public ActivityContext Raised(int gsi)
    {
        _counts ??= InterruptCounts.For(Vm);
        Interlocked.Increment(ref _counts[gsi is >= 0 and < 256 ? gsi : 256]);
        var active = TraceSwitches.Active;
        if (active == TraceSwitches.Kinds.None) return default;
        if ((active & TraceSwitches.Kinds.Metrics) != 0 && VmMeters.InterruptsRaised.Enabled)
            VmMeters.InterruptsRaised.Add(1, new KeyValuePair<string, object?>(VmName, Vm),
                new KeyValuePair<string, object?>(TelemetryAttributes.DeviceName, DeviceName), new KeyValuePair<string, object?>(IrqGsi, gsi));
        if ((active & TraceSwitches.Kinds.Irq) == 0) return default;
        _class ??= new EventClass("irq." + DeviceName);
        return InterruptTrace.Raise(_class, Vm, DeviceName, gsi);
    }
}
