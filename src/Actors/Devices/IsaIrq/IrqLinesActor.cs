using Akka.Actor;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Devices.IsaIrq;

/// <summary>
/// The record of the interrupt lines: each GSI's last level and how often it rose, as the
/// <see cref="IsaIrqRouter"/> copies every SetIrq/PulseIrq here. For state dumps and tests; it routes nothing.
/// </summary>
public sealed class IrqLinesActor : ReceiveActor
{
    public sealed record GetLines
    {
        public static readonly GetLines Instance = new();
    }

    /// <summary>Level and assertion count per GSI.</summary>
    public sealed record Lines(IReadOnlyDictionary<int, (bool Level, long Raised)> ByGsi);

    private readonly Dictionary<int, (bool Level, long Raised)> _lines = new();

    public static Props Props() => Akka.Actor.Props.Create(() => new IrqLinesActor());

    public IrqLinesActor()
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
