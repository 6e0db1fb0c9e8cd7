using Akka.Actor;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.Pic;

/// <summary>
/// The actor around the <see cref="Pic"/> pair: port accesses (20h/21h, A0h/A1h, 4D0h/4D1h, all mapped to
/// this actor), ISA lines, and the INTA cycle. INTR changes go to <paramref name="intrTarget"/> as
/// <see cref="InterruptProtocol.LocalInterrupt"/> on LINT0: the BSP's LAPIC, which delivers it as ExtINT
/// (virtual wire), or straight to the CPU when its LAPIC is disabled.
/// </summary>
public sealed class PicActor : ReceiveActor
{
    private readonly Pic _pic;
    private readonly LintLine _intr;
    private readonly RouteTelemetry _telemetry;

    public static Props Props(IActorRef intrTarget) => Akka.Actor.Props.Create(() => new PicActor(intrTarget));

    public PicActor(IActorRef intrTarget)
    {
        var self = Self;
        _intr = new LintLine(intrTarget, self);
        _pic = new Pic(_intr);
        _telemetry = new RouteTelemetry(self);

        Receive<PioRead>(m => Sender.Tell(new AccessResult(m.Size == 1 ? _pic.Read(m.Port) : Wide(m))));
        Receive<PioWrite>(m =>
        {
            // A wide access reaches consecutive byte registers, as on the ISA bus.
            for (var i = 0; i < m.Size; i++) _pic.Write((ushort)(m.Port + i), (byte)(m.Value >> (8 * i)));
        });
        Receive<InterruptProtocol.SetIrq>(m =>
        {
            _intr.Stamp = m.Raised;
            if (m.Trace == default) _pic.SetIrq(m.Gsi, m.Level);
            else Traced(m.Trace, m.Gsi, () => _pic.SetIrq(m.Gsi, m.Level));
            _intr.Stamp = 0;
        });
        Receive<InterruptProtocol.PulseIrq>(m =>
        {
            _intr.Stamp = m.Raised;
            if (m.Trace == default) _pic.PulseIrq(m.Gsi);
            else Traced(m.Trace, m.Gsi, () => _pic.PulseIrq(m.Gsi));
            _intr.Stamp = 0;
        });
        Receive<InterruptProtocol.InterruptAcknowledge>(_ =>
        {
            if (!_pic.Intr)
            {
                Sender.Tell(new AccessResult(InterruptProtocol.InterruptAcknowledge.NoRequest));
                return;
            }
            var vector = _pic.Acknowledge();
            Sender.Tell(new AccessResult(vector | (_pic.Intr ? InterruptProtocol.InterruptAcknowledge.IntrStillAsserted : 0)));
        });
    }

    private ulong Wide(PioRead m)
    {
        ulong v = 0;
        for (var i = 0; i < m.Size; i++) v |= (ulong)_pic.Read((ushort)(m.Port + i)) << (8 * i);
        return v;
    }

    /// <summary>
    /// A traced line change: the route span around it. The vector is known only at the INTA, so the span says
    /// whether INTR rose; the context rides on that LINT0 change to the LAPIC.
    /// </summary>
    private void Traced(System.Diagnostics.ActivityContext trace, int irq, Action change)
    {
        var route = _telemetry.Start(trace, irq);
        _intr.Trace = trace;
        _intr.Raised = false;
        try
        {
            change();
        }
        finally
        {
            _intr.Trace = default;
        }
        _telemetry.End(route, _intr.Raised, -1, null);
    }

    private sealed class LintLine(IActorRef target, IActorRef self) : IIrqLine
    {
        /// <summary>The trace of the line change being handled, and whether it raised INTR (actor thread only).</summary>
        public System.Diagnostics.ActivityContext Trace;
        public bool Raised;
        /// <summary>The raise time of the line change being handled (0: none), for the latency histogram.</summary>
        public long Stamp;

        public void Set(bool level)
        {
            if (level) Raised = true;
            target.Tell(new InterruptProtocol.LocalInterrupt(0, level, level ? Trace : default, level ? Stamp : 0), self);
        }
    }
}
