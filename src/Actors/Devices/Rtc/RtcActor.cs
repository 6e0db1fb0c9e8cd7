using Akka.Actor;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Time;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.Rtc;

/// <summary>
/// The actor around an <see cref="Rtc"/>: port accesses at 0x70-0x73 become model calls, IRQF becomes
/// <see cref="InterruptProtocol.SetIrq"/> for GSI 8 to the ISA interrupt target, and after every message
/// the model's next event is armed on the kernel timer service. <see cref="LifecycleProtocol.Reset"/>
/// resets the chip and keeps its time and RAM. With a <see cref="CmosStore"/> the time and RAM also outlive
/// the actor: it restores from the store at start and stores after every guest write, so a VM rebuilt for
/// a guest reboot finds the clock and NVRAM its previous instance left.
/// </summary>
public sealed class RtcActor : ReceiveActor
{
    public const int Irq = 8;

    private readonly Rtc _rtc;
    private readonly DeviceTimer _timer;
    private readonly CmosStore? _cmos;
    private readonly DeviceStateStore? _state;
    private readonly MessageIrqLine _line;
    /// <summary>Built from a saved state, whose restore has driven the line already.</summary>
    private readonly bool _restored;

    /// <param name="ramBelow4G">Guest RAM below the PCI hole, for the BIOS memory-size bytes.</param>
    /// <param name="ramAbove4G">Guest RAM from 4 GiB up.</param>
    /// <param name="cmos">The battery-backed state shared across VM instances; null for none (power-on every time).</param>
    /// <param name="state">Where all registers are kept after each message, for a restart from the last consistent
    /// state; null: a restart is from power-on state (with the CMOS the <paramref name="cmos"/> store keeps).</param>
    public static Props Props(IActorRef isaTarget, ITimerService timers, ulong ramBelow4G, ulong ramAbove4G, int cpus,
        CmosStore? cmos = null, DeviceStateStore? state = null) =>
        Akka.Actor.Props.Create(() => new RtcActor(isaTarget, timers, ramBelow4G, ramAbove4G, cpus, cmos, state));

    public RtcActor(IActorRef isaTarget, ITimerService timers, ulong ramBelow4G, ulong ramAbove4G, int cpus, CmosStore? cmos,
        DeviceStateStore? state = null)
    {
        _line = new MessageIrqLine(isaTarget, Irq, Self);
        _rtc = new Rtc(timers.Clock, _line);
        _cmos = cmos;
        _state = state;
        if (state?.LastAs<RtcState>() is { } registers)
        {
            _restored = true;
            _rtc.RestoreState(registers);
            // The failed instance stored its CMOS as it stopped, perhaps mid-message: the battery keeps this one.
            cmos?.Store(_rtc.SaveCmos());
        }
        else
        {
            if (cmos?.Current is { } saved) _rtc.RestoreCmos(saved);
            // The memory-size bytes describe this VM, whatever an earlier one left there.
            _rtc.SetMemorySize(ramBelow4G, ramAbove4G, cpus);
        }
        _timer = new DeviceTimer(timers, Self);

        Receive<PioRead>(m =>
        {
            ulong value = 0;
            for (var i = 0; i < m.Size; i++) value |= (ulong)_rtc.Read(m.Offset + i) << (8 * i);
            Sender.Tell(new AccessResult(value));
            Rearm();
        });
        Receive<PioWrite>(m =>
        {
            for (var i = 0; i < m.Size; i++) _rtc.Write(m.Offset + i, (byte)(m.Value >> (8 * i)));
            // Writes are rare (a clock set, an NVRAM byte): keeping the store current on each costs nothing.
            _cmos?.Store(_rtc.SaveCmos());
            Rearm();
        });
        Receive<TimerExpired>(m =>
        {
            if (_timer.IsCurrent(m)) _rtc.OnTimer();
            Rearm();
        });
        Receive<LifecycleProtocol.Reset>(_ =>
        {
            _rtc.Reset();
            Rearm();
        });
        Receive<RtcProtocol.SetTime>(m =>
        {
            _rtc.SetTimeFromHost(m.Utc);
            _cmos?.Store(_rtc.SaveCmos());
            Rearm();
            Sender.Tell(new RtcProtocol.Status(_rtc.GuestTime, _rtc.IrqLevel, _rtc.Interrupts, _timer.ArmedDeadline));
        });
        Receive<RtcProtocol.ReadNvram>(m => Sender.Tell(Rtc.IsNvramOffset(m.Offset)
            ? new RtcProtocol.NvramByte(m.Offset, _rtc.ReadNvram(m.Offset))
            : new RtcProtocol.NvramRefused(m.Offset, NvramRange)));
        Receive<RtcProtocol.WriteNvram>(m =>
        {
            if (!Rtc.IsNvramOffset(m.Offset))
            {
                Sender.Tell(new RtcProtocol.NvramRefused(m.Offset, NvramRange));
                return;
            }
            _rtc.WriteNvram(m.Offset, m.Value);
            _cmos?.Store(_rtc.SaveCmos());
            Sender.Tell(new RtcProtocol.NvramByte(m.Offset, _rtc.ReadNvram(m.Offset)));
        });
        Receive<RtcProtocol.GetStatus>(_ => Sender.Tell(new RtcProtocol.Status(_rtc.GuestTime, _rtc.IrqLevel, _rtc.Interrupts, _timer.ArmedDeadline)));
    }

    private const string NvramRange = "NVRAM offsets are 0x0e-0xff except the century byte 0x32 (0x00-0x0d are the clock's registers: use rtc-time)";

    private void Rearm() => _timer.Arm(_rtc.NextDeadline());

    /// <summary>
    /// A message handled without throwing leaves consistent registers: they are what a restart comes back to. A read
    /// the device failed on is answered with all ones, so the vCPU does not wait out its timeout.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message) =>
        DeviceSnapshots.Receive(() => base.AroundReceive(receive, message), message, Sender, Self, _state, () => _rtc.SaveState());

    /// <summary>The failed instance may have left IRQ 8 either way: drive it to this instance's level.</summary>
    protected override void PostRestart(Exception reason)
    {
        base.PostRestart(reason);
        if (!_restored) _line.Set(_rtc.IrqLevel);
    }

    protected override void PreStart() => Rearm();

    protected override void PostStop()
    {
        _timer.Cancel();
        _cmos?.Store(_rtc.SaveCmos());
    }
}
