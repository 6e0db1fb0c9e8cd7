using Akka.Actor;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Devices.IsaIrq;

/// <summary>
/// The ISA interrupt API, as bhyve's vm_isa_assert_irq/deassert/pulse: a device's SetIrq/PulseIrq reaches the
/// 8259 pin and the IOAPIC pin together, so the guest may use either controller. ISA IRQ n is 8259 pin n and
/// IOAPIC pin n, except IRQ 0 (the PIT), which is IOAPIC pin 2 (the ACPI/MP interrupt source override every
/// PC firmware reports). GSIs 16 and up exist only on the IOAPIC. MSIs go on to the APIC bus. A copy of each
/// line change goes to the <see cref="IrqLinesActor"/>.
/// <para>
/// It is an actor reference without a mailbox: the forwarding happens inside the device's own <c>Tell</c>.
/// An extra actor hop here would let a guest's EOI overtake the deassert that its own register read caused
/// (device → router → IOAPIC is two hops, vCPU → IOAPIC one), and a level-triggered pin would be delivered
/// once more after it had already dropped. Sent directly, the deassert is in the controller's mailbox before
/// the device answers the read, so before the vCPU can send the EOI.
/// </para>
/// </summary>
public sealed class IsaIrqRouter : MinimalActorRef, IDisposable
{
    public const int IsaIrqCount = 16;
    public const int PitIrq = 0, PitIoApicPin = 2;

    private readonly IActorRef _pic, _ioapic, _apicBus, _lines;

    public override ActorPath Path { get; }
    public override IActorRefProvider Provider { get; }

    public IsaIrqRouter(ActorSystem system, IActorRef pic, IActorRef ioapic, IActorRef apicBus, IActorRef lines)
    {
        _pic = pic;
        _ioapic = ioapic;
        _apicBus = apicBus;
        _lines = lines;
        Provider = ((ExtendedActorSystem)system).Provider;
        Path = Provider.TempPath();
        Provider.RegisterTempActor(this, Path);
    }

    public static int IoApicPin(int gsi) => gsi == PitIrq ? PitIoApicPin : gsi;

    protected override void TellInternal(object message, IActorRef sender)
    {
        switch (message)
        {
            case InterruptProtocol.SetIrq m:
                if (m.Gsi is >= 0 and < IsaIrqCount) _pic.Tell(m, sender);
                _ioapic.Tell(m with { Gsi = IoApicPin(m.Gsi) }, sender);
                _lines.Tell(m, sender);
                break;
            case InterruptProtocol.PulseIrq m:
                if (m.Gsi is >= 0 and < IsaIrqCount) _pic.Tell(m, sender);
                _ioapic.Tell(m with { Gsi = IoApicPin(m.Gsi) }, sender);
                _lines.Tell(m, sender);
                break;
            case InterruptProtocol.Msi m:
                _apicBus.Tell(m, sender);
                break;
        }
    }

    public void Dispose() => Provider.UnregisterTempActor(Path);
}
