using Akka.Actor;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Time;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.AcpiPm;

/// <summary>
/// The actor around an <see cref="AcpiPm"/>: port accesses in the PM block (0x600-0x63F) become model calls,
/// the SCI becomes <see cref="InterruptProtocol.SetIrq"/> for its ISA IRQ (9) to the ISA interrupt target,
/// a guest's S5 request becomes <see cref="LifecycleProtocol.PowerOffRequested"/> to the supervisor (the
/// parent unless another is given), and while TMR_EN is set the next timer carry is armed on the kernel
/// timer service. <see cref="LifecycleProtocol.Reset"/> resets the block; the timer keeps counting.
/// </summary>
public sealed class AcpiPmActor : ReceiveActor
{
    public const int DefaultSciIrq = 9;

    private readonly AcpiPm _pm;
    private readonly DeviceTimer _timer;
    private readonly IActorRef? _supervisor;

    /// <param name="isaTarget">Where SetIrq goes (the ISA IRQ router).</param>
    /// <param name="supervisor">Who hears PowerOffRequested; null means the parent (the VM supervisor).</param>
    public static Props Props(IActorRef isaTarget, ITimerService timers, IActorRef? supervisor = null,
        int sciIrq = DefaultSciIrq, byte s5SleepType = AcpiPmRegisters.S5SleepType) =>
        Akka.Actor.Props.Create(() => new AcpiPmActor(isaTarget, timers, supervisor, sciIrq, s5SleepType));

    public AcpiPmActor(IActorRef isaTarget, ITimerService timers, IActorRef? supervisor, int sciIrq, byte s5SleepType)
    {
        _pm = new AcpiPm(timers.Clock, new MessageIrqLine(isaTarget, sciIrq, Self), s5SleepType);
        _timer = new DeviceTimer(timers, Self);
        _supervisor = supervisor;

        Receive<PioRead>(m =>
        {
            Sender.Tell(new AccessResult(_pm.Read(m.Offset, m.Size)));
            Rearm();
        });
        Receive<PioWrite>(m =>
        {
            if (_pm.Write(m.Offset, m.Size, m.Value) == AcpiPmEffect.PowerOff)
                (_supervisor ?? Context.Parent).Tell(new LifecycleProtocol.PowerOffRequested($"ACPI PM1a_CNT SLP_EN with SLP_TYP {_pm.SleepType} (S5)"));
            Rearm();
        });
        Receive<AcpiPmProtocol.PressPowerButton>(_ =>
        {
            _pm.PressPowerButton();
            Rearm();
        });
        Receive<TimerExpired>(m =>
        {
            if (_timer.IsCurrent(m)) _pm.OnTimer();
            Rearm();
        });
        Receive<LifecycleProtocol.Reset>(_ =>
        {
            _pm.Reset();
            Rearm();
        });
        Receive<AcpiPmProtocol.GetStatus>(_ =>
            Sender.Tell(new AcpiPmProtocol.Status(_pm.Save(), _pm.Timer, _pm.SciLevel, _pm.SciAssertions, _timer.ArmedDeadline)));
    }

    private void Rearm() => _timer.Arm(_pm.NextDeadline());

    protected override void PreStart() => Rearm();

    protected override void PostStop() => _timer.Cancel();
}
