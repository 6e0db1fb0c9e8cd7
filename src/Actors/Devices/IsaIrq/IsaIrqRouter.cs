using Akka.Actor;
using Actorvisor.Actors.Devices.Hpet;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Devices.IsaIrq;

/// <summary>
/// The ISA interrupt API, as bhyve's vm_isa_assert_irq/deassert/pulse: a device's SetIrq/PulseIrq reaches the
/// 8259 pin and the IOAPIC pin together, so the guest may use either controller. ISA IRQ n is 8259 pin n and
/// IOAPIC pin n, except IRQ 0 (the PIT), which is IOAPIC pin 2 (the ACPI/MP interrupt source override every
/// PC firmware reports). GSIs 16 and up exist only on the IOAPIC. MSIs go on to the APIC bus. A copy of each
/// line change goes to the <see cref="IrqLinesActor"/>.
/// <para>
/// It is an actor reference without a mailbox: the forwarding happens inside the device's own <c>Tell</c>.
/// An extra actor hop here would let a guest's EOI overtake the deassert that its own register read caused
/// (device → router → IOAPIC is two hops, vCPU → IOAPIC one), and a level-triggered pin would be delivered
/// once more after it had already dropped. Sent directly, the deassert is in the controller's mailbox before
/// the device answers the read, so before the vCPU can send the EOI.
/// </para>
/// <para>
/// The HPET's LegacyReplacement (IA-PC HPET 1.0a 2.3.5: timer 0 on IRQ 0, timer 1 on IRQ 8, the 8254 and
/// RTC interrupts cut off meanwhile) is a switch here: the HPET tells the router
/// <see cref="HpetProtocol.LegacyReplacementChanged"/>, and while it is on, IRQ 0 and IRQ 8 carry only what
/// that sender raises; every other source's changes on them are recorded but not forwarded. The router keeps
/// both sides' levels, so flipping the switch moves each line to the level of the side that now drives it
/// (an RTC interrupt still pending when the HPET lets go reaches the controllers then).
/// </para>
/// </summary>
public sealed class IsaIrqRouter : MinimalActorRef, IDisposable
{
    public const int IsaIrqCount = 16;
    public const int PitIrq = 0, PitIoApicPin = 2;

    private readonly IActorRef _pic, _ioapic, _apicBus, _lines;

    /// <summary>The ISA IRQs LegacyReplacement takes over: the PIT's and the RTC's.</summary>
    public const int RtcIrq = 8;
    private readonly object _legacyLock = new();
    /// <summary>The HPET (the sender of LegacyReplacementChanged), and whether it holds IRQ 0 and 8 now.</summary>
    private IActorRef? _replacement;
    private bool _replacing;
    /// <summary>Levels on IRQ 0 and 8 (index 0 and 1) from the legacy devices and from the HPET.</summary>
    private readonly bool[] _legacyLevel = new bool[2], _replacementLevel = new bool[2];

    public override ActorPath Path { get; }
    public override IActorRefProvider Provider { get; }

    public IsaIrqRouter(ActorSystem system, IActorRef pic, IActorRef ioapic, IActorRef apicBus, IActorRef lines)
    {
        _pic = pic;
        _ioapic = ioapic;
        _apicBus = apicBus;
        _lines = lines;
        Provider = ((ExtendedActorSystem)system).Provider;
        Path = Provider.TempPath();
        Provider.RegisterTempActor(this, Path);
    }

    public static int IoApicPin(int gsi) => gsi == PitIrq ? PitIoApicPin : gsi;

    /// <summary>The fault-injection engine every line change, pulse and MSI is decided by; none when null.</summary>
    public Actorvisor.Kernel.Faults.FaultEngine? Faults { get; set; }

    protected override void TellInternal(object message, IActorRef sender)
    {
        if (Faults is { Active: true } faults && FaultPointOf(message, sender) is { } point)
        {
            var d = faults.Decide(point, 4);
            switch (d.Verdict)
            {
                case Actorvisor.Kernel.Faults.FaultVerdict.Drop:
                    return;
                case Actorvisor.Kernel.Faults.FaultVerdict.Delay:
                    faults.Later(d.Delay, () => Route(message, sender));
                    return;
                case Actorvisor.Kernel.Faults.FaultVerdict.Duplicate:
                    Route(message, sender);
                    break;
                case Actorvisor.Kernel.Faults.FaultVerdict.Replace or Actorvisor.Kernel.Faults.FaultVerdict.Corrupt
                    when message is InterruptProtocol.Msi msi:
                    message = msi with { Data = (uint)d.ApplyToValue(msi.Data) };
                    break;
            }
        }
        Route(message, sender);
    }

    /// <summary>The fault engine's view of an interrupt message: the raising device, the GSI (or MSI address) and the MSI data.</summary>
    private static Actorvisor.Kernel.Faults.FaultPoint? FaultPointOf(object message, IActorRef sender)
    {
        var device = sender is null || sender.IsNobody() ? "" : sender.Path.Name;
        return message switch
        {
            InterruptProtocol.SetIrq m => new(Actorvisor.Kernel.Faults.FaultKind.Irq, device, (ulong)m.Gsi, m.Level ? 1UL : 0),
            InterruptProtocol.PulseIrq m => new(Actorvisor.Kernel.Faults.FaultKind.Irq, device, (ulong)m.Gsi, 1),
            InterruptProtocol.Msi m => new(Actorvisor.Kernel.Faults.FaultKind.Msi, device, m.Address, m.Data),
            _ => null,
        };
    }

    private void Route(object message, IActorRef sender)
    {
        switch (message)
        {
            case InterruptProtocol.SetIrq m when m.Gsi is PitIrq or RtcIrq:
                lock (_legacyLock)
                {
                    var fromReplacement = IsReplacement(sender);
                    (fromReplacement ? _replacementLevel : _legacyLevel)[Slot(m.Gsi)] = m.Level;
                    if (fromReplacement == _replacing) Forward(m, sender);
                }
                break;
            case InterruptProtocol.PulseIrq m when m.Gsi is PitIrq or RtcIrq:
                lock (_legacyLock)
                {
                    if (IsReplacement(sender) == _replacing) Forward(m, sender);
                }
                break;
            case InterruptProtocol.SetIrq or InterruptProtocol.PulseIrq:
                Forward(message, sender);
                break;
            case InterruptProtocol.Msi m:
                _apicBus.Tell(m, sender);
                break;
            case HpetProtocol.LegacyReplacementChanged m:
                SwitchLegacyReplacement(m.Active, sender);
                break;
        }
    }

    /// <summary>Whether IRQ 0 and 8 belong to the HPET now (tests, state dumps).</summary>
    public bool LegacyReplacementActive
    {
        get { lock (_legacyLock) return _replacing; }
    }

    private static int Slot(int gsi) => gsi == PitIrq ? 0 : 1;

    private bool IsReplacement(IActorRef sender) => _replacement is { } r && r.Equals(sender);

    private void SwitchLegacyReplacement(bool active, IActorRef sender)
    {
        lock (_legacyLock)
        {
            if (sender is null || sender.IsNobody()) return; // only a device can own the lines
            _replacement = sender;
            if (active == _replacing) return;
            _replacing = active;
            foreach (var gsi in new[] { PitIrq, RtcIrq })
            {
                var before = (active ? _legacyLevel : _replacementLevel)[Slot(gsi)];
                var after = (active ? _replacementLevel : _legacyLevel)[Slot(gsi)];
                if (before != after) Forward(new InterruptProtocol.SetIrq(gsi, after), sender);
            }
        }
    }

    private readonly object _holdLock = new();
    /// <summary>GSIs held asserted by a fault storm, and the level the devices last set on each (restored when the hold ends).</summary>
    private readonly HashSet<int> _held = new();
    private readonly Dictionary<int, bool> _deviceLevel = new();

    /// <summary>
    /// Holds <paramref name="gsi"/> asserted (a stuck line, the fault engine's storm) or lets it go. While held,
    /// the line is the OR of the hold and the devices: a device's deassert does not lower it, so a level-triggered
    /// pin is delivered again after every EOI. Letting go puts the line back to the devices' last level.
    /// </summary>
    public void Hold(int gsi, bool held)
    {
        bool level;
        lock (_holdLock)
        {
            if (!(held ? _held.Add(gsi) : _held.Remove(gsi))) return;
            level = held || _deviceLevel.GetValueOrDefault(gsi);
        }
        var m = new InterruptProtocol.SetIrq(gsi, level);
        Send(m, ActorRefs.NoSender);
    }

    private void Forward(object message, IActorRef sender)
    {
        if (message is InterruptProtocol.SetIrq set)
        {
            lock (_holdLock)
            {
                _deviceLevel[set.Gsi] = set.Level;
                if (_held.Contains(set.Gsi)) message = set with { Level = true };
            }
        }
        Send(message, sender);
    }

    private void Send(object message, IActorRef sender)
    {
        switch (message)
        {
            case InterruptProtocol.SetIrq m:
                if (m.Gsi is >= 0 and < IsaIrqCount) _pic.Tell(m, sender);
                _ioapic.Tell(m with { Gsi = IoApicPin(m.Gsi) }, sender);
                _lines.Tell(m, sender);
                break;
            case InterruptProtocol.PulseIrq m:
                if (m.Gsi is >= 0 and < IsaIrqCount) _pic.Tell(m, sender);
                _ioapic.Tell(m with { Gsi = IoApicPin(m.Gsi) }, sender);
                _lines.Tell(m, sender);
                break;
        }
    }

    public void Dispose() => Provider.UnregisterTempActor(Path);
}
