using System.Diagnostics;
using static Actorvisor.Kernel.Telemetry.TelemetryAttributes;

namespace Actorvisor.Kernel.Telemetry;

/// <summary>
/// A span per traced port or MMIO access (class <c>io.&lt;device&gt;</c>, sampled): a read spans the wait for the
/// device's answer, a write is posted and so is instant. Started only after the caller's one-field check.
/// </summary>
public static class IoTrace
{
    public static Activity? Start(EventClass cls, string vm, int vcpu, string device, bool port, ulong address, int size, bool write, ulong value)
    {
        if (!ActorvisorTelemetry.Source.HasListeners() || !cls.ShouldTrace) return null;
        var previous = Activity.Current;
        Activity.Current = null; // each access is a trace of its own
        var a = ActorvisorTelemetry.Source.StartActivity(write ? SpanNames.IoWrite : SpanNames.IoRead, ActivityKind.Client);
        if (a is null)
        {
            Activity.Current = previous;
            return null;
        }
        a.SetTag(VmName, vm);
        a.SetTag(VcpuId, vcpu);
        a.SetTag(DeviceName, device);
        if (port) a.SetTag(IoPort, (int)address);
        else a.SetTag(MmioAddress, $"0x{address:x}");
        a.SetTag(IoDirection, write ? "write" : "read");
        a.SetTag(IoSize, size);
        if (write) a.SetTag(IoValue, (long)value);
        return a;
    }

    /// <summary>Ends the span (a read gets the value it returned).</summary>
    public static void End(Activity a, ulong? value = null)
    {
        if (value is { } v) a.SetTag(IoValue, (long)v);
        a.Stop();
        Activity.Current = null;
    }
}

/// <summary>VM lifecycle transitions as instant spans (class <c>vm.lifecycle</c>).</summary>
public static class LifecycleTrace
{
    private static readonly EventClass Class = new("vm.lifecycle");

    public static void Transition(string vm, string from, string to, string? reason = null)
    {
        if ((TraceSwitches.Active & TraceSwitches.Kinds.Lifecycle) == 0 || !ActorvisorTelemetry.Source.HasListeners() || !Class.Enabled) return;
        var previous = Activity.Current;
        Activity.Current = null;
        var a = ActorvisorTelemetry.Source.StartActivity(SpanNames.Lifecycle, ActivityKind.Internal);
        if (a is not null)
        {
            a.SetTag(VmName, vm);
            a.SetTag(LifecycleFrom, from);
            a.SetTag(LifecycleTo, to);
            if (reason is not null) a.SetTag("vm.reason", reason);
            a.Stop();
        }
        Activity.Current = previous;
    }
}

/// <summary>
/// Where the fault engine reports each fault it injects (DESIGN.md "Faults"): a span event
/// <see cref="SpanNames.FaultInjected"/> on the current span (the traced access or interrupt the fault hit), or
/// on an instant span of its own when none is open; class <c>fault.&lt;rule&gt;</c>; and always a count in
/// <c>actorvisor.faults</c>.
/// </summary>
public static class FaultTrace
{
    private static readonly System.Diagnostics.Metrics.Counter<long> Faults =
        ActorvisorTelemetry.Meter.CreateCounter<long>("actorvisor.faults", "{fault}", "Faults injected, by rule");

    public static void Injected(string vm, string rule, string target, string action)
    {
        if (Faults.Enabled)
            Faults.Add(1, new KeyValuePair<string, object?>(VmName, vm), new KeyValuePair<string, object?>(FaultRule, rule));
        if ((TraceSwitches.Active & TraceSwitches.Kinds.Fault) == 0 || !ActorvisorTelemetry.Source.HasListeners() ||
            !TraceSwitches.IsEnabled("fault." + rule)) return;
        var tags = new ActivityTagsCollection
        {
            [FaultRule] = rule,
            [DeviceName] = target,
            ["fault.action"] = action,
        };
        if (Activity.Current is { } current)
        {
            current.AddEvent(new ActivityEvent(SpanNames.FaultInjected, tags: tags));
            return;
        }
        var a = ActorvisorTelemetry.Source.StartActivity(SpanNames.Fault, ActivityKind.Internal);
        if (a is null) return;
        a.SetTag(VmName, vm);
        a.SetTag(FaultRule, rule);
        a.SetTag(DeviceName, target);
        a.AddEvent(new ActivityEvent(SpanNames.FaultInjected, tags: tags));
        a.Stop();
        Activity.Current = null;
    }
}
