using Akka.Actor;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Devices.IsaIrq;

/// <summary>
/// The ISA interrupt API, as bhyve's vm_isa_assert_irq/deassert/pulse: a device's SetIrq/PulseIrq reaches the
/// 8259 pin and the IOAPIC pin together, so the guest may use either controller. ISA IRQ n is 8259 pin n and
/// IOAPIC pin n, except IRQ 0 (the PIT), which is IOAPIC pin 2 (the ACPI/MP interrupt source override every
/// PC firmware reports). GSIs 16 and up exist only on the IOAPIC. MSIs go on to the APIC bus. It also keeps
/// each GSI's last level and how often it rose, for state dumps and tests.
/// </summary>
public sealed class IsaIrqActor : ReceiveActor
{
    public const int IsaIrqCount = 16;
    public const int PitIrq = 0, PitIoApicPin = 2;

    public sealed record GetLines
    {
        public static readonly GetLines Instance = new();
    }

    /// <summary>Level and assertion count per GSI.</summary>
    public sealed record Lines(IReadOnlyDictionary<int, (bool Level, long Raised)> ByGsi);

    private readonly Dictionary<int, (bool Level, long Raised)> _lines = new();

    public static Props Props(IActorRef pic, IActorRef ioapic, IActorRef apicBus) =>
        Akka.Actor.Props.Create(() => new IsaIrqActor(pic, ioapic, apicBus));

    public static int IoApicPin(int gsi) => gsi == PitIrq ? PitIoApicPin : gsi;

    public IsaIrqActor(IActorRef pic, IActorRef ioapic, IActorRef apicBus)
    {
        Receive<InterruptProtocol.SetIrq>(m =>
        {
            var (level, raised) = _lines.GetValueOrDefault(m.Gsi);
            _lines[m.Gsi] = (m.Level, raised + (m.Level && !level ? 1 : 0));
            if (m.Gsi is >= 0 and < IsaIrqCount) pic.Tell(m, Sender);
            ioapic.Tell(m with { Gsi = IoApicPin(m.Gsi) }, Sender);
        });
        Receive<InterruptProtocol.PulseIrq>(m =>
        {
            var (level, raised) = _lines.GetValueOrDefault(m.Gsi);
            _lines[m.Gsi] = (level, raised + 1);
            if (m.Gsi is >= 0 and < IsaIrqCount) pic.Tell(m, Sender);
            ioapic.Tell(m with { Gsi = IoApicPin(m.Gsi) }, Sender);
        });
        Receive<InterruptProtocol.Msi>(m => apicBus.Tell(m, Sender));
        Receive<GetLines>(_ => Sender.Tell(new Lines(new Dictionary<int, (bool, long)>(_lines))));
    }
}
