using Akka.Actor;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Cpu.Lapic;

/// <summary>
/// The APIC bus: takes interrupt messages (from the IOAPIC, IPIs from LAPICs, MSIs) and hands each to the
/// LAPICs its destination names, using the addressing each LAPIC publishes (ID, LDR, DFR).
/// </summary>
public sealed class ApicBusActor : ReceiveActor
{
    /// <summary>Adds a LAPIC (its vCPU-owned side and its mailbox actor) to the bus.</summary>
    public sealed record Attach(VcpuLapic Lapic, IActorRef Mailbox);

    private readonly List<(VcpuLapic Lapic, IActorRef Mailbox)> _lapics = new();

    public long Undeliverable { get; private set; }

    public static Props Props() => Akka.Actor.Props.Create(() => new ApicBusActor());

    public ApicBusActor()
    {
        Receive<Attach>(a => _lapics.Add((a.Lapic, a.Mailbox)));
        Receive<InterruptProtocol.LapicDeliver>(Route);
        Receive<InterruptProtocol.Msi>(m =>
        {
            if (MsiDecoder.Decode(m.Address, m.Data) is { } d)
                Route(m.Trace == default && m.Raised == 0 ? d : d with { Trace = m.Trace, Raised = m.Raised });
            else Undeliverable++;
        });
    }

    private void Route(InterruptProtocol.LapicDeliver m)
    {
        var addresses = _lapics.Select(l => l.Lapic.Address).ToList();
        var any = false;
        foreach (var id in ApicRouting.Targets(addresses, m))
        {
            any = true;
            foreach (var l in _lapics)
                if (l.Lapic.VcpuId == id) l.Mailbox.Tell(m, Sender);
        }
        if (!any) Undeliverable++;
    }
}
