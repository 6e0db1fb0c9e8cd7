using Akka.Actor;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.PcTestdev;

/// <summary>
/// The actor around a <see cref="PcTestdev"/> model. Its effects: an IRQ-line write becomes
/// <see cref="InterruptProtocol.SetIrq"/> to the interrupt fabric; a page flush drops the decoded code of
/// that guest-physical page (<see cref="GuestMemory.InvalidateCodePage"/>), the software engine's nearest
/// thing to QEMU's unmapping of the page, so the next execution there decodes afresh. TLBs map linear to
/// physical addresses, which a flush does not change, so they are left alone.
/// </summary>
public sealed class PcTestdevActor : ReceiveActor
{
    private readonly PcTestdev _model = new();

    /// <param name="fabric">Where SetIrq goes (PIC and IOAPIC, or the placeholder that records levels).</param>
    public static Props Props(IActorRef fabric, GuestMemory memory) =>
        Akka.Actor.Props.Create(() => new PcTestdevActor(fabric, memory));

    public PcTestdevActor(IActorRef fabric, GuestMemory memory)
    {
        Receive<PioRead>(m => Sender.Tell(new AccessResult(_model.PioRead(m.Port, m.Size))));
        Receive<PioWrite>(m =>
        {
            switch (_model.PioWrite(m.Port, m.Size, m.Value))
            {
                case PcTestdevEffect.SetIrq irq:
                    fabric.Tell(new InterruptProtocol.SetIrq(irq.Gsi, irq.Level, m.Trace), Self);
                    break;
                case PcTestdevEffect.FlushPage flush when memory.IsRam(flush.GuestPhysicalPage, GuestMemory.PageSize):
                    // A page outside RAM holds no decoded code: nothing to drop.
                    memory.InvalidateCodePage(flush.GuestPhysicalPage >> GuestMemory.PageShift);
                    break;
            }
        });
        Receive<MmioRead>(m => Sender.Tell(new AccessResult(_model.MmioRead(m.Offset, m.Size))));
        Receive<MmioWrite>(m => _model.MmioWrite(m.Offset, m.Size, m.Value));
    }
}
