using Actorvisor.Kernel.Time;
using static Actorvisor.Actors.Devices.Pit.PitRegisters;

namespace Actorvisor.Actors.Devices.Pit;

/// <summary>
/// The PC's 8254 PIT and the timer bits of port 0x61. A plain model: counts are computed from the clock
/// when read (CLK tick = whole 1/1.193182 MHz periods since the model's epoch), never ticked.
/// Counter 0's OUT drives IRQ 0: every rising edge of OUT0 is one <see cref="IEdgeIrqLine.Pulse"/>
/// (as bhyve's vatpit pulses; an edge-triggered PIC or IOAPIC pin sees exactly those edges). The owner
/// arms a timer for <see cref="NextDeadline"/> and calls <see cref="OnTimer"/> when it passes; deadlines
/// are absolute tick times from the epoch, so periodic interrupts do not drift.
/// Edges closer together than <c>minimumIrqInterval</c> are coalesced into one pulse (a guest that
/// programs a tiny period must not turn the host's timer thread into a busy loop); they are counted.
/// Counters 0 and 1 have their gates tied high, as on a PC; counter 2's gate is port 0x61 bit 0.
/// </summary>
public sealed class Pit
{
    public static readonly TimeSpan DefaultMinimumIrqInterval = TimeSpan.FromMicroseconds(50);

    private readonly TimeProvider _clock;
    private readonly IEdgeIrqLine _irq0;
    private long _epoch;
    private readonly long _minimumInterval;
    private readonly PitCounter[] _counters = [new(gate: true), new(gate: true), new(gate: false)];
    private byte _portB;
    /// <summary>OUT0 edges up to this tick have been delivered (or dropped by a reprogramming).</summary>
    private long _irqDeliveredTick;
    private long? _lastPulse;

    public Pit(TimeProvider clock, IEdgeIrqLine? irq0 = null, TimeSpan? minimumIrqInterval = null)
    {
        _clock = clock;
        _irq0 = irq0 ?? NoIrqLine.Instance;
        _epoch = clock.GetTimestamp();
        _minimumInterval = (long)((minimumIrqInterval ?? DefaultMinimumIrqInterval).TotalSeconds * clock.TimestampFrequency);
        foreach (var c in _counters) c.PowerOn();
    }

    // ---- counters ----
    public long Irq0Pulses { get; private set; }
    /// <summary>OUT0 rising edges folded into a pulse with others (late timer, or a period below the minimum).</summary>
    public long CoalescedIrq0Edges { get; private set; }
    public long MissedWrites { get; private set; }

    /// <summary>The clock tick (1.193182 MHz periods since the epoch) at the clock's present time.</summary>
    public long CurrentTick => TimeStamps.TicksBetween(_clock, _epoch, _clock.GetTimestamp(), ClockHz);

    /// <summary>The timestamp at which clock tick <paramref name="tick"/> begins.</summary>
    public long TimestampOfTick(long tick) => TimeStamps.AfterTicks(_clock, _epoch, tick, ClockHz);

    /// <summary>Counter <paramref name="counter"/>'s count now, binary (for tests and status).</summary>
    public int Count(int counter) => _counters[counter].Value(CurrentTick);

    public bool Out(int counter) => _counters[counter].Out(CurrentTick);

    // ---- ports 0x40-0x43 ----

    public byte Read(int offset)
    {
        var tick = CurrentTick;
        return offset switch
        {
            >= Counter0 and <= Counter2 => _counters[offset].Read(tick),
            _ => 0xFF, // the control word register is write-only
        };
    }

    public void Write(int offset, byte value)
    {
        var tick = CurrentTick;
        switch (offset)
        {
            case >= Counter0 and <= Counter2:
                if (offset == Counter0) DeliverEdges(tick);
                _counters[offset].WriteCount(value, tick);
                if (offset == Counter0) _irqDeliveredTick = tick;
                break;
            case ControlWord:
                var select = value >> SelectShift;
                if (select == SelectReadBack)
                {
                    ReadBack(value, tick);
                    break;
                }
                var c = _counters[select];
                if ((value & AccessMask) == 0)
                {
                    c.Latch(tick);
                    break;
                }
                if (select == Counter0) DeliverEdges(tick);
                c.Control(value, tick);
                if (select == Counter0) _irqDeliveredTick = tick;
                break;
            default:
                MissedWrites++;
                break;
        }
    }

    private void ReadBack(byte value, long tick)
    {
        for (var i = 0; i < 3; i++)
        {
            if ((value & (1 << (ReadBackCounterShift + i))) == 0) continue;
            // Status first: when both are latched, the first read returns the status (datasheet).
            if ((value & ReadBackNoStatus) == 0) _counters[i].LatchStatus(tick);
            if ((value & ReadBackNoCount) == 0) _counters[i].Latch(tick);
        }
    }

    // ---- port 0x61 ----

    public byte ReadPortB()
    {
        var tick = CurrentTick;
        var value = (byte)(_portB & PortBWritable);
        if ((tick / RefreshPeriodTicks & 1) != 0) value |= PortBRefreshToggle;
        if (_counters[Counter2].Out(tick)) value |= PortBOut2;
        return value;
    }

    public void WritePortB(byte value)
    {
        _portB = (byte)(value & PortBWritable);
        _counters[Counter2].SetGate((value & PortBGate2) != 0, CurrentTick);
    }

    /// <summary>Whether the speaker's data input (counter 2's OUT AND port 0x61 bit 1) is enabled; no sound is made.</summary>
    public bool SpeakerEnabled => (_portB & PortBSpeakerData) != 0;

    // ---- IRQ 0 ----

    /// <summary>The timestamp of the next OUT0 rising edge not yet delivered, or null if none will come.</summary>
    public long? NextDeadline()
    {
        if (_counters[Counter0].NextRisingEdge(_irqDeliveredTick) is not { } edge) return null;
        var at = TimestampOfTick(edge);
        if (_lastPulse is { } last && at < last + _minimumInterval) at = last + _minimumInterval;
        return at;
    }

    /// <summary>Delivers the OUT0 rising edges that have happened by now (one pulse for any number of them).</summary>
    public void OnTimer() => DeliverEdges(CurrentTick);

    private void DeliverEdges(long tick)
    {
        var counter = _counters[Counter0];
        var edges = 0L;
        var from = _irqDeliveredTick;
        while (counter.NextRisingEdge(from) is { } e && e <= tick)
        {
            edges++;
            from = e;
            if (edges > 1000) break; // enough to know several were missed
        }
        if (edges == 0) return;
        var now = _clock.GetTimestamp();
        if (_lastPulse is { } last && now < last + _minimumInterval)
        {
            return; // too soon: NextDeadline has us back at last + minimum, and the edge is delivered then
        }
        _irqDeliveredTick = tick;
        _lastPulse = now;
        Irq0Pulses++;
        CoalescedIrq0Edges += edges - 1;
        _irq0.Pulse();
    }

    /// <summary>Back to power-on state (a VM reset): the epoch stays, the counters restart.</summary>
    public void Reset()
    {
        var tick = CurrentTick;
        for (var i = 0; i < 3; i++) _counters[i] = new PitCounter(gate: i != Counter2);
        foreach (var c in _counters) c.PowerOn();
        _portB = 0;
        _irqDeliveredTick = tick;
        _lastPulse = null;
    }

    public PitState Save() => new(_epoch, _portB, _irqDeliveredTick, _lastPulse, Irq0Pulses, CoalescedIrq0Edges,
        _counters[0].Save(), _counters[1].Save(), _counters[2].Save());

    /// <summary>A PIT in a state <see cref="Save"/> made on the same clock: it counts on from there; OUT0 edges due meanwhile come with the next timer.</summary>
    public static Pit Restore(PitState s, TimeProvider clock, IEdgeIrqLine? irq0 = null, TimeSpan? minimumIrqInterval = null)
    {
        var pit = new Pit(clock, irq0, minimumIrqInterval)
        {
            _epoch = s.Epoch, _portB = s.PortB, _irqDeliveredTick = s.IrqDeliveredTick, _lastPulse = s.LastPulse,
            Irq0Pulses = s.Irq0Pulses, CoalescedIrq0Edges = s.CoalescedIrq0Edges,
        };
        pit._counters[0] = PitCounter.Restore(s.Counter0);
        pit._counters[1] = PitCounter.Restore(s.Counter1);
        pit._counters[2] = PitCounter.Restore(s.Counter2);
        return pit;
    }
}
