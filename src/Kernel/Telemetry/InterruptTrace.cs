using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using static Actorvisor.Kernel.Telemetry.TelemetryAttributes;

namespace Actorvisor.Kernel.Telemetry;

/// <summary>
/// One trace per interrupt. The device that raises a line (or sends an MSI) opens a root span
/// <see cref="SpanNames.Interrupt"/> and an instant child <see cref="SpanNames.Raise"/>; the root's context
/// travels in the interrupt messages (SetIrq, PulseIrq, Msi, LapicDeliver, LocalInterrupt). The controller
/// that routes it adds <see cref="SpanNames.Route"/>, the LAPIC <see cref="SpanNames.Accept"/> when the message
/// reaches the vCPU thread, the vCPU <see cref="SpanNames.Inject"/> when it takes the vector, and the guest's
/// EOI <see cref="SpanNames.Eoi"/>, which also ends the root. Akka carries no context of its own (STYLE.md 5),
/// hence the field in each message.
/// <para>
/// The root spans stay open across actors: they wait here by span id. One that never reaches an EOI (masked,
/// or delivered through the 8259, whose EOI is a port write we do not attribute) is ended at injection (ExtINT)
/// or swept after <see cref="OpenLimit"/>; a swept root carries <c>irq.delivered=false</c> unless injected.
/// </para>
/// </summary>
public static class InterruptTrace
{
    private static readonly ConcurrentDictionary<ActivitySpanId, Activity> Open = new();
    private static long _lastSweep;

    /// <summary>How long a root may stay open before it is ended without its EOI.</summary>
    public static readonly TimeSpan OpenLimit = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Assert → injection: traced interrupts (tags: vm.name, irq.gsi, irq.vector), and with metrics on the untraced
    /// ones too (tags: vm.name, irq.vector; <see cref="InterruptLatency"/>).
    /// </summary>
    public static readonly Histogram<double> Latency = ActorvisorTelemetry.Meter.CreateHistogram(
        "actorvisor.interrupt.latency", "s", "Time from a device raising an interrupt to the vCPU taking its vector",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = VmMeters.LatencyBuckets });

    /// <summary>Open roots (tests, state dumps).</summary>
    public static int OpenCount => Open.Count;

    /// <summary>
    /// A device raises <paramref name="gsi"/> (-1: an MSI). Returns the context to put in the message, or
    /// default when this interrupt is not traced (class off, sampled out, or nobody listens).
    /// </summary>
    public static ActivityContext Raise(EventClass cls, string vm, string device, int gsi)
    {
        if ((TraceSwitches.Active & TraceSwitches.Kinds.Irq) == 0 || !ActorvisorTelemetry.Source.HasListeners()) return default;
        if (!cls.ShouldTrace) return default;
        var previous = Activity.Current;
        Activity.Current = null; // a new trace, whatever ran before on this thread
        var root = ActorvisorTelemetry.Source.StartActivity(SpanNames.Interrupt, ActivityKind.Internal);
        Activity.Current = previous;
        if (root is null) return default;
        root.SetTag(VmName, vm);
        root.SetTag(DeviceName, device);
        if (gsi >= 0) root.SetTag(IrqGsi, gsi);
        Open[root.SpanId] = root;
        var raise = Child(SpanNames.Raise, root.Context, vm);
        if (raise is not null)
        {
            raise.SetTag(DeviceName, device);
            if (gsi >= 0) raise.SetTag(IrqGsi, gsi);
            raise.Stop();
        }
        Activity.Current = previous;
        SweepIfDue();
        return root.Context;
    }

    /// <summary>An interrupt controller starts routing a traced line; the caller sets the outcome and stops it.</summary>
    public static Activity? StartRoute(ActivityContext parent, string vm, string controller, int gsi)
    {
        if (parent == default) return null;
        var a = Child(SpanNames.Route, parent, vm);
        a?.SetTag(IrqController, controller);
        a?.SetTag(DeviceName, controller);
        if (gsi >= 0) a?.SetTag(IrqGsi, gsi);
        return a;
    }

    /// <summary>The outcome of routing: the vector and trigger sent on, or nothing delivered (masked, Remote IRR).</summary>
    public static void EndRoute(Activity? route, bool delivered, int vector = -1, string? trigger = null)
    {
        if (route is null) return;
        route.SetTag(IrqDelivered, delivered);
        if (vector >= 0) route.SetTag(IrqVector, vector);
        if (trigger is not null) route.SetTag(IrqTrigger, trigger);
        route.Stop();
        Activity.Current = null;
    }

    /// <summary>The LAPIC accepted the message into IRR (vCPU thread).</summary>
    public static void Accept(ActivityContext parent, string vm, int vcpu, int vector, string trigger)
    {
        var previous = Activity.Current;
        var a = Child(SpanNames.Accept, parent, vm);
        if (a is null) return;
        a.SetTag(VcpuId, vcpu);
        if (vector >= 0) a.SetTag(IrqVector, vector);
        a.SetTag(IrqTrigger, trigger);
        a.Stop();
        Activity.Current = previous;
    }

    /// <summary>The vCPU takes the vector (IRR → ISR, or the 8259's INTA) and delivers it through the IDT.</summary>
    public static void Inject(ActivityContext parent, string vm, int vcpu, int vector)
    {
        var previous = Activity.Current;
        var a = Child(SpanNames.Inject, parent, vm);
        Open.TryGetValue(parent.SpanId, out var root);
        double latencySeconds = -1;
        if (root is not null)
        {
            latencySeconds = (DateTime.UtcNow - root.StartTimeUtc).TotalSeconds;
            root.SetTag(IrqVector, vector);
            root.SetTag(VcpuId, vcpu);
            root.SetTag(IrqDelivered, true);
        }
        if (a is not null)
        {
            a.SetTag(VcpuId, vcpu);
            a.SetTag(IrqVector, vector);
            if (latencySeconds >= 0) a.SetTag(IrqLatency, Math.Round(latencySeconds * 1e6, 1));
            a.Stop();
            Activity.Current = previous;
        }
        if (latencySeconds >= 0 && Latency.Enabled)
            Latency.Record(latencySeconds, new KeyValuePair<string, object?>(VmName, vm),
                new KeyValuePair<string, object?>(IrqGsi, root!.GetTagItem(IrqGsi) ?? -1), new KeyValuePair<string, object?>(IrqVector, vector));
    }

    /// <summary>The guest's EOI for the vector: the last span of the interrupt, which ends the root.</summary>
    public static void Eoi(ActivityContext parent, string vm, int vcpu, int vector)
    {
        var previous = Activity.Current;
        var a = Child(SpanNames.Eoi, parent, vm);
        if (a is not null)
        {
            a.SetTag(VcpuId, vcpu);
            a.SetTag(IrqVector, vector);
            a.Stop();
            Activity.Current = previous;
        }
        End(parent);
    }

    /// <summary>Ends the interrupt's root span (EOI, or where no EOI will be seen).</summary>
    public static void End(ActivityContext root)
    {
        if (root != default && Open.TryRemove(root.SpanId, out var a)) a.Stop();
    }

    /// <summary>Ends every open root (the exporter is about to flush).</summary>
    public static void EndAll()
    {
        foreach (var id in Open.Keys)
            if (Open.TryRemove(id, out var a)) a.Stop();
    }

    private static Activity? Child(string name, ActivityContext parent, string vm)
    {
        if (parent == default) return null;
        var a = ActorvisorTelemetry.Source.StartActivity(name, ActivityKind.Internal, parent);
        a?.SetTag(VmName, vm);
        return a;
    }

    private static void SweepIfDue()
    {
        var now = Stopwatch.GetTimestamp();
        var last = Interlocked.Read(ref _lastSweep);
        if (Stopwatch.GetElapsedTime(last, now) < OpenLimit / 2 || Interlocked.CompareExchange(ref _lastSweep, now, last) != last) return;
        var cutoff = DateTime.UtcNow - OpenLimit;
        foreach (var (id, a) in Open)
        {
            if (a.StartTimeUtc >= cutoff) continue;
            if (!Open.TryRemove(id, out _)) continue;
            if (a.GetTagItem(IrqDelivered) is null) a.SetTag(IrqDelivered, false);
            a.Stop();
        }
    }
}
