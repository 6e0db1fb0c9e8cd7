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
    private readonly TellSink _sink;
    private readonly RouteTelemetry _telemetry;

    public static Props Props(IActorRef apicBus) => Akka.Actor.Props.Create(() => new IoApicActor(apicBus));

    public IoApicActor(IActorRef apicBus)
    {
        _sink = new TellSink(apicBus, Self);
        _ioapic = new IoApic(_sink);
        _telemetry = new RouteTelemetry(Self);
        Receive<MmioRead>(m => Sender.Tell(new AccessResult(_ioapic.Read(m.Offset, m.Size))));
        Receive<MmioWrite>(m => _ioapic.Write(m.Offset, m.Size, (uint)m.Value));
        Receive<InterruptProtocol.SetIrq>(m =>
        {
            if (m.Trace != default) Traced(m.Trace, m.Raised, m.Gsi, () => _ioapic.SetPin(m.Gsi, m.Level));
            else if (m.Raised != 0) Stamped(m.Raised, () => _ioapic.SetPin(m.Gsi, m.Level));
            else _ioapic.SetPin(m.Gsi, m.Level);
        });
        Receive<InterruptProtocol.PulseIrq>(m =>
        {
            if (m.Trace != default) Traced(m.Trace, m.Raised, m.Gsi, () => _ioapic.PulsePin(m.Gsi));
            else if (m.Raised != 0) Stamped(m.Raised, () => _ioapic.PulsePin(m.Gsi));
            else _ioapic.PulsePin(m.Gsi);
        });
        Receive<InterruptProtocol.EndOfInterrupt>(m => _ioapic.EndOfInterrupt(m.Vector));
        Receive<IoApicProtocol.GetState>(_ => Sender.Tell(_ioapic.Save()));
    }

    /// <summary>A traced pin change: the route span around it, and the trace context on what it sends.</summary>
    private void Traced(System.Diagnostics.ActivityContext trace, long raised, int pin, Action change)
    {
        var route = _telemetry.Start(trace, pin);
        var before = _ioapic.Delivered;
        _sink.Trace = trace;
        _sink.Raised = raised;
        try
        {
            change();
        }
        finally
        {
            _sink.Trace = default;
            _sink.Raised = 0;
        }
        var sent = _ioapic.Delivered != before;
        var entry = (uint)pin < IoApicRegisters.PinCount ? _ioapic.Entry(pin) : 0;
        _telemetry.End(route, sent, (int)(entry & IoApicRegisters.VectorMask),
            (entry & IoApicRegisters.LevelTriggered) != 0 ? "level" : "edge");
    }

    /// <summary>An untraced pin change with a raise time: the time rides on what it sends, for the latency histogram.</summary>
    private void Stamped(long raised, Action change)
    {
        _sink.Raised = raised;
        try
        {
            change();
        }
        finally
        {
            _sink.Raised = 0;
        }
    }

    private sealed class TellSink(IActorRef target, IActorRef self) : IApicMessageSink
    {
        /// <summary>The trace and raise time of the pin change being handled (the actor's thread only).</summary>
        public System.Diagnostics.ActivityContext Trace;
        public long Raised;

        public void Send(InterruptProtocol.LapicDeliver message) =>
            target.Tell(Trace == default && Raised == 0 ? message : message with { Trace = Trace, Raised = Raised }, self);
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
