using Akka.Actor;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Time;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.Pit;

/// <summary>
/// The actor around a <see cref="Pit"/>: port accesses at 0x40-0x43 and 0x61 become model calls (the bus
/// maps both ranges here; <see cref="PioRead.Port"/> tells them apart), OUT0's edges become
/// <see cref="InterruptProtocol.PulseIrq"/> for GSI 0 to the ISA interrupt target, and after every message
/// the next OUT0 edge is armed on the kernel timer service.
/// </summary>
public sealed class PitActor : ReceiveActor
{
    public const int Irq = 0;

    private readonly Pit _pit;
    private readonly DeviceTimer _timer;
    private readonly DeviceStateStore? _state;

    /// <param name="state">Where the registers are kept after each message, for a restart from the last consistent
    /// state; null: a restart is from power-on state.</param>
    public static Props Props(IActorRef isaTarget, ITimerService timers, DeviceStateStore? state = null) =>
        Akka.Actor.Props.Create(() => new PitActor(isaTarget, timers, state));

    public PitActor(IActorRef isaTarget, ITimerService timers, DeviceStateStore? state = null)
    {
        _state = state;
        var line = new MessageIrqLine(isaTarget, Irq, Self);
        // OUT0 is an edge source: a restored PIT has no level to drive; its next edge is armed at start.
        _pit = state?.LastAs<PitState>() is { } saved ? Pit.Restore(saved, timers.Clock, line) : new Pit(timers.Clock, line);
        _timer = new DeviceTimer(timers, Self);

        Receive<PioRead>(m =>
        {
            ulong value = 0;
            for (var i = 0; i < m.Size; i++) value |= (ulong)ReadByte(m.Port, m.Offset + i) << (8 * i);
            Sender.Tell(new AccessResult(value));
            Rearm();
        });
        Receive<PioWrite>(m =>
        {
            // An ISA bus splits a wide access into byte accesses at consecutive ports.
            for (var i = 0; i < m.Size; i++) WriteByte(m.Port, m.Offset + i, (byte)(m.Value >> (8 * i)));
            Rearm();
        });
        Receive<TimerExpired>(m =>
        {
            if (_timer.IsCurrent(m)) _pit.OnTimer();
            Rearm();
        });
        Receive<LifecycleProtocol.Reset>(_ =>
        {
            _pit.Reset();
            Rearm();
        });
        Receive<PitProtocol.GetStatus>(_ => Sender.Tell(new PitProtocol.Status(
            _pit.Irq0Pulses, _pit.CoalescedIrq0Edges, _pit.Count(0), _pit.Out(0), _timer.ArmedDeadline)));
    }

    private byte ReadByte(ushort port, int offset) =>
        port == PitRegisters.PortB ? _pit.ReadPortB() : _pit.Read(offset);

    private void WriteByte(ushort port, int offset, byte value)
    {
        if (port == PitRegisters.PortB) _pit.WritePortB(value);
        else _pit.Write(offset, value);
    }

    private void Rearm() => _timer.Arm(_pit.NextDeadline());

    /// <summary>
    /// A message handled without throwing leaves consistent registers: they are what a restart comes back to. A read
    /// the device failed on is answered with all ones, so the vCPU does not wait out its timeout.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message) =>
        DeviceSnapshots.Receive(() => base.AroundReceive(receive, message), message, Sender, Self, _state, () => _pit.Save());

    protected override void PreStart() => Rearm();

    protected override void PostStop() => _timer.Cancel();
}
