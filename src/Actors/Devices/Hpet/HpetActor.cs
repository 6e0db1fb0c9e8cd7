using Akka.Actor;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Time;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.Hpet;

/// <summary>
/// The actor around an <see cref="Hpet"/>: MMIO accesses in the 1 KiB window become model calls, the
/// model's interrupts become <see cref="InterruptProtocol.SetIrq"/>/<see cref="InterruptProtocol.PulseIrq"/>
/// (ISA IRQ 0/8 under LegacyReplacement, IOAPIC pins 16-23 otherwise) and <see cref="InterruptProtocol.Msi"/>
/// (FSB delivery), all to the ISA interrupt target, and after every message the next comparator match is
/// armed on the kernel timer service.
/// </summary>
public sealed class HpetActor : ReceiveActor
{
    private readonly Hpet _hpet;
    private readonly DeviceTimer _timer;
    private readonly IActorRef? _legacyObserver;
    private bool _legacyActive;

    /// <param name="isaTarget">Where SetIrq/PulseIrq/Msi go (the VM's IsaIrqRouter).</param>
    /// <param name="legacyObserver">Told <see cref="HpetProtocol.LegacyReplacementChanged"/>; may be null.</param>
    public static Props Props(IActorRef isaTarget, ITimerService timers, IActorRef? legacyObserver = null,
        TimeSpan? minimumInterruptInterval = null) =>
        Akka.Actor.Props.Create(() => new HpetActor(isaTarget, timers, legacyObserver, minimumInterruptInterval));

    public HpetActor(IActorRef isaTarget, ITimerService timers, IActorRef? legacyObserver, TimeSpan? minimumInterruptInterval)
    {
        _hpet = new Hpet(timers.Clock, new TellSink(isaTarget, Self), minimumInterruptInterval);
        _timer = new DeviceTimer(timers, Self);
        _legacyObserver = legacyObserver;

        Receive<MmioRead>(m =>
        {
            Sender.Tell(new AccessResult(_hpet.Read(m.Offset, m.Size)));
            Rearm();
        });
        Receive<MmioWrite>(m =>
        {
            _hpet.Write(m.Offset, m.Size, m.Value);
            Rearm();
        });
        Receive<TimerExpired>(m =>
        {
            if (_timer.IsCurrent(m)) _hpet.OnTimer();
            Rearm();
        });
        Receive<LifecycleProtocol.Reset>(_ =>
        {
            _hpet.Reset();
            Rearm();
        });
        Receive<HpetProtocol.GetStatus>(_ => Sender.Tell(new HpetProtocol.Status(_hpet.Counter, _hpet.Enabled,
            _hpet.LegacyReplacement, _hpet.Read(HpetRegisters.InterruptStatus, 8), _hpet.Interrupts,
            _hpet.CoalescedMatches, _timer.ArmedDeadline)));
    }

    private void Rearm()
    {
        _timer.Arm(_hpet.NextDeadline());
        var legacy = _hpet.Enabled && _hpet.LegacyReplacement;
        if (legacy == _legacyActive) return;
        _legacyActive = legacy;
        _legacyObserver?.Tell(new HpetProtocol.LegacyReplacementChanged(legacy), Self);
    }

    protected override void PreStart() => Rearm();

    protected override void PostStop() => _timer.Cancel();

    private sealed class TellSink(IActorRef target, IActorRef self) : IHpetInterruptSink
    {
        private readonly InterruptSourceTelemetry _telemetry = new(self);

        public void SetIrq(int gsi, bool level) => target.Tell(level
            ? new InterruptProtocol.SetIrq(gsi, true, _telemetry.Raised(gsi), Actorvisor.Kernel.Telemetry.InterruptLatency.Stamp())
            : new InterruptProtocol.SetIrq(gsi, false), self);
        public void PulseIrq(int gsi) =>
            target.Tell(new InterruptProtocol.PulseIrq(gsi, _telemetry.Raised(gsi), Actorvisor.Kernel.Telemetry.InterruptLatency.Stamp()), self);
        public void Msi(ulong address, uint data) =>
            target.Tell(new InterruptProtocol.Msi(address, data, _telemetry.Raised(-1), Actorvisor.Kernel.Telemetry.InterruptLatency.Stamp()), self);
    }
}
