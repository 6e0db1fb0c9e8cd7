using Akka.Actor;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Host.Vm;

/// <summary>
/// Stands where the interrupt fabric (PIC and IOAPIC) will be: it takes SetIrq/PulseIrq from devices and
/// records each GSI's last level and how often it was raised, so the wiring can be checked before any
/// interrupt is delivered to a vCPU.
/// </summary>
public sealed class UnroutedIrqActor : ReceiveActor
{
    public sealed record GetLines
    {
        public static readonly GetLines Instance = new();
    }

    /// <summary>Level and assertion count per GSI.</summary>
    public sealed record Lines(IReadOnlyDictionary<int, (bool Level, long Raised)> ByGsi);

    private readonly Dictionary<int, (bool Level, long Raised)> _lines = new();

    public static Props Props() => Akka.Actor.Props.Create(() => new UnroutedIrqActor());

    public UnroutedIrqActor()
    {
        Receive<InterruptProtocol.SetIrq>(m =>
        {
            var (level, raised) = _lines.GetValueOrDefault(m.Gsi);
            _lines[m.Gsi] = (m.Level, raised + (m.Level && !level ? 1 : 0));
        });
        Receive<InterruptProtocol.PulseIrq>(m =>
        {
            var (level, raised) = _lines.GetValueOrDefault(m.Gsi);
            _lines[m.Gsi] = (level, raised + 1);
        });
        Receive<GetLines>(_ => Sender.Tell(new Lines(new Dictionary<int, (bool, long)>(_lines))));
    }
}
