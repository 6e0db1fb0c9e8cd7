using System.Diagnostics;
using Akka.Actor;
using Actorvisor.Kernel.Telemetry;

namespace Actorvisor.Actors.Devices;

/// <summary>The route span an interrupt controller actor (IOAPIC, 8259 pair) adds to a traced interrupt.</summary>
public sealed class RouteTelemetry(IActorRef controller)
{
    private string? _name, _vm;

    private string Name => _name ??= controller.Path.Name;
    private string Vm => _vm ??= TelemetryNames.VmFromSupervisor(controller.Path.Parent.Name);

    public Activity? Start(ActivityContext trace, int gsi) => InterruptTrace.StartRoute(trace, Vm, Name, gsi);

    public void End(Activity? route, bool delivered, int vector, string? trigger) =>
        InterruptTrace.EndRoute(route, delivered, delivered ? vector : -1, trigger);
}
