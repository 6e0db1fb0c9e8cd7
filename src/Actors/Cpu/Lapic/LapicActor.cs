using Akka.Actor;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Cpu.Lapic;

/// <summary>
/// The mailbox face of one vCPU's LAPIC (<c>lapic-&lt;i&gt;</c>): APIC-bus messages and LINT levels arrive
/// here and are handed to the <see cref="VcpuLapic"/> that the vCPU's thread owns, which wakes that thread.
/// The register page itself is not behind this actor: the vCPU thread reads and writes it directly.
/// </summary>
public sealed class LapicActor : ReceiveActor
{
    public static Props Props(VcpuLapic lapic) => Akka.Actor.Props.Create(() => new LapicActor(lapic));

    public LapicActor(VcpuLapic lapic)
    {
        Receive<InterruptProtocol.LapicDeliver>(lapic.Post);
        Receive<InterruptProtocol.LocalInterrupt>(lapic.Post);
    }
}
