using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Actorvisor.Kernel.Telemetry;

/// <summary>
/// The one ActivitySource and the one Meter of the VMM (both named "Actorvisor", DESIGN.md "Telemetry"),
/// and the attribute names every span and measurement uses. System.Diagnostics only: exporters live in Host.
/// </summary>
public static class ActorvisorTelemetry
{
    public const string Name = "Actorvisor";

    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);
}

/// <summary>Attribute (tag) names, fixed by DESIGN.md; the last few are ours for what it does not name.</summary>
public static class TelemetryAttributes
{
    public const string VmName = "vm.name";
    public const string VcpuId = "vcpu.id";
    public const string DeviceName = "device.name";
    public const string IoPort = "io.port";
    public const string MmioAddress = "mmio.address";
    public const string IrqGsi = "irq.gsi";
    public const string IrqVector = "irq.vector";
    public const string IrqTrigger = "irq.trigger";
    public const string FaultRule = "fault.rule";
    // Not named by DESIGN.md:
    public const string IoDirection = "io.direction";
    public const string IoSize = "io.size";
    public const string IoValue = "io.value";
    public const string ExitReason = "exit.reason";
    public const string VcpuState = "vcpu.state";
    public const string IrqDelivered = "irq.delivered";
    public const string IrqController = "irq.controller";
    public const string IrqLatency = "irq.latency_us";
    public const string LifecycleFrom = "vm.state.from";
    public const string LifecycleTo = "vm.state.to";
    public const string ActorName = "actor.name";
}

/// <summary>Span and event names (also the names a JSON-lines trace file carries).</summary>
public static class SpanNames
{
    /// <summary>The root span of one interrupt: from the device raising it to the guest's EOI.</summary>
    public const string Interrupt = "irq";
    public const string Raise = "irq.raise";
    public const string Route = "irq.route";
    public const string Accept = "irq.accept";
    public const string Inject = "irq.inject";
    public const string Eoi = "irq.eoi";
    public const string IoRead = "io.read";
    public const string IoWrite = "io.write";
    public const string Lifecycle = "vm.lifecycle";
    public const string Fault = "fault";
    /// <summary>The span event every injected fault adds (DESIGN.md: "Every injected fault is a span event").</summary>
    public const string FaultInjected = "fault.injected";
}

/// <summary>Names the telemetry derives from where an actor sits: /user/vm-NAME/DEVICE.</summary>
public static class TelemetryNames
{
    /// <summary>The VM's name from its supervisor's actor name (vm-NAME → NAME; anything else as it is).</summary>
    public static string VmFromSupervisor(string supervisorName) =>
        supervisorName.StartsWith("vm-", StringComparison.Ordinal) ? supervisorName[3..] : supervisorName;
}
