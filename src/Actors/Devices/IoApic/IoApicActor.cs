using Akka.Actor;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.IoApic;

/// <summary>
/// The actor around the <see cref="IoApic"/>: MMIO accesses, pin levels (SetIrq/PulseIrq with the GSI as
/// the pin) and EOI broadcasts in; interrupt messages out to <paramref name="apicBus"/>, which hands them to
/// the LAPICs their destination names.
/// </summary>
public sealed class IoApicActor : ReceiveActor
{
    private readonly IoApic _ioapic;

    public static Props Props(IActorRef apicBus) => Akka.Actor.Props.Create(() => new IoApicActor(apicBus));

    public IoApicActor(IActorRef apicBus)
    {
        _ioapic = new IoApic(new TellSink(apicBus, Self));
        Receive<MmioRead>(m => Sender.Tell(new AccessResult(_ioapic.Read(m.Offset, m.Size))));
        Receive<MmioWrite>(m => _ioapic.Write(m.Offset, m.Size, (uint)m.Value));
        Receive<InterruptProtocol.SetIrq>(m => _ioapic.SetPin(m.Gsi, m.Level));
        Receive<InterruptProtocol.PulseIrq>(m => _ioapic.PulsePin(m.Gsi));
        Receive<InterruptProtocol.EndOfInterrupt>(m => _ioapic.EndOfInterrupt(m.Vector));
        Receive<IoApicProtocol.GetState>(_ => Sender.Tell(_ioapic.Save()));
    }

    private sealed class TellSink(IActorRef target, IActorRef self) : IApicMessageSink
    {
        public void Send(InterruptProtocol.LapicDeliver message) => target.Tell(message, self);
    }
}

public static class IoApicProtocol
{
    /// <summary>Answered with <see cref="IoApicState"/>.</summary>
    public sealed record GetState
    {
        public static readonly GetState Instance = new();
    }
}
