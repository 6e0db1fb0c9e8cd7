using Actorvisor.Kernel.Time;
using static Actorvisor.Actors.Devices.Hpet.HpetRegisters;

namespace Actorvisor.Actors.Devices.Hpet;

/// <summary>
/// The IA-PC HPET (specification 1.0a): a 64-bit main counter at <see cref="CounterHz"/> and
/// <see cref="TimerCount"/> comparators. A plain model: the counter is computed from the clock when read
/// (whole counter periods since the moment it was last started or written), never ticked; comparator
/// matches are found lazily, on every access and at <see cref="OnTimer"/>, for all counter values passed
/// since the last look, so no match is lost however late the host timer runs.
/// <para>
/// Interrupts (2.3.8, 2.3.5): a timer's match sets its Tn_INT_STS bit when it is level-triggered (whether
/// or not its interrupt is enabled, as the spec says for Tn_INT_ENB_CNF); with Tn_INT_ENB_CNF set it
/// then holds its line high until the guest writes 1 to that bit. An edge-triggered timer pulses its line,
/// and a timer with Tn_FSB_EN_CNF sends its FSB route as an MSI instead of using a pin. LegacyReplacement
/// sends timer 0 to ISA IRQ 0 and timer 1 to ISA IRQ 8 whatever their own route says. A pin route outside
/// Tn_INT_ROUTE_CAP is refused: the route field keeps its previous value (the spec's "the value read back
/// will not match what is written"); the power-on route 0 is not a capable pin, so such a timer only sets
/// status until the guest routes it.
/// </para>
/// <para>
/// Edges closer together than the minimum interval are folded into one (a guest that programs a tiny
/// period must not make the host's timer thread spin); the folded matches are counted. While the counter
/// is halted (ENABLE_CNF = 0) there are no matches and every line is low; status bits are kept.
/// </para>
/// </summary>
public sealed class Hpet
{
    public static readonly TimeSpan DefaultMinimumInterruptInterval = TimeSpan.FromMicroseconds(50);

    /// <summary>How far ahead a deadline is armed at most: a 64-bit comparator may be centuries away.</summary>
    private const ulong HorizonTicks = 1UL << 36; // about 1.9 hours at 10 MHz

    private readonly TimeProvider _clock;
    private readonly IHpetInterruptSink _sink;
    private readonly long _minimumInterval;
    private readonly HpetTimer[] _timers = new HpetTimer[TimerCount];
    /// <summary>The level each GSI is driven to by the level-triggered timers (only GSIs ever raised).</summary>
    private readonly Dictionary<int, bool> _lines = new();
    private ulong _config;
    private ulong _status;
    /// <summary>The main counter's value at <see cref="_baseTimestamp"/> (while running) or its held value (halted).</summary>
    private ulong _counterBase;
    private long _baseTimestamp;
    /// <summary>The clock's time as the access being handled began: one instant for all of its steps.</summary>
    private long _now;

    public Hpet(TimeProvider clock, IHpetInterruptSink? sink = null, TimeSpan? minimumInterruptInterval = null)
    {
        _clock = clock;
        _sink = sink ?? NoHpetInterrupts.Instance;
        _minimumInterval = (long)((minimumInterruptInterval ?? DefaultMinimumInterruptInterval).TotalSeconds * clock.TimestampFrequency);
        for (var i = 0; i < TimerCount; i++) _timers[i] = new HpetTimer();
        _baseTimestamp = clock.GetTimestamp();
    }

    // ---- counters (for status and tests) ----
    /// <summary>Interrupts sent: pulses, MSIs and rising edges of level lines.</summary>
    public long Interrupts { get; private set; }
    /// <summary>Matches folded into an edge sent for another (late host timer, or a period under the minimum interval).</summary>
    public long CoalescedMatches { get; private set; }
    public long MissedReads { get; private set; }
    public long MissedWrites { get; private set; }

    public bool Enabled => (_config & Enable) != 0;
    public bool LegacyReplacement => (_config & LegacyRoute) != 0;

    /// <summary>The main counter now.</summary>
    public ulong Counter => CounterAt(_clock.GetTimestamp());

    private ulong CounterAt(long timestamp) => Enabled
        ? _counterBase + (ulong)TimeStamps.TicksBetween(_clock, _baseTimestamp, timestamp, CounterHz)
        : _counterBase;

    /// <summary>The timestamp at which the running counter reaches <paramref name="value"/> (at most the horizon ahead).</summary>
    public long TimestampOfCounter(ulong value) =>
        TimeStamps.AfterTicks(_clock, _baseTimestamp, (long)Math.Min(value - _counterBase, long.MaxValue / 2), CounterHz);

    /// <summary>The level the HPET drives on <paramref name="gsi"/> (level-triggered timers only).</summary>
    public bool LineLevel(int gsi) => _lines.GetValueOrDefault(gsi);

    // ---- MMIO ----

    /// <summary>Reads <paramref name="size"/> bytes at <paramref name="offset"/>; unimplemented offsets read 0.</summary>
    public ulong Read(ulong offset, int size)
    {
        if (!ValidAccess(offset, size))
        {
            MissedReads++;
            return 0;
        }
        Sync();
        var shift = (int)(offset & 7) * 8;
        var value = ReadRegister(offset & ~7UL) >> shift;
        return size == 8 ? value : value & ((1UL << (size * 8)) - 1);
    }

    /// <summary>Writes the low <paramref name="size"/> bytes of <paramref name="value"/> at <paramref name="offset"/>; read-only and reserved bits are kept.</summary>
    public void Write(ulong offset, int size, ulong value)
    {
        if (!ValidAccess(offset, size))
        {
            MissedWrites++;
            return;
        }
        Sync();
        var shift = (int)(offset & 7) * 8;
        var mask = (size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1) << shift;
        WriteRegister(offset & ~7UL, (value << shift) & mask, mask);
        UpdateLines();
    }

    private static bool ValidAccess(ulong offset, int size) =>
        size is 1 or 2 or 4 or 8 && offset < WindowSize && (int)(offset & 7) + size <= 8;

    private ulong ReadRegister(ulong reg)
    {
        switch (reg)
        {
            case Capabilities: return CapabilitiesValue;
            case Configuration: return _config;
            case InterruptStatus: return _status;
            case MainCounter: return CounterAt(_now);
        }
        if (TimerOf(reg) is not { } n) return 0;
        var t = _timers[n];
        return ((reg - TimerBase) % TimerStride) switch
        {
            TimerConfigOffset => t.Config,
            TimerComparatorOffset => t.Comparator & t.ComparatorMask,
            TimerFsbRouteOffset => t.FsbRoute,
            _ => 0,
        };
    }

    private static int? TimerOf(ulong reg) =>
        reg >= TimerBase && reg < TimerBase + TimerStride * TimerCount ? (int)((reg - TimerBase) / TimerStride) : null;

    private void WriteRegister(ulong reg, ulong value, ulong mask)
    {
        switch (reg)
        {
            case Capabilities:
                return; // read-only
            case Configuration:
                WriteConfiguration(((_config & ~mask) | value) & ConfigurationWritable);
                return;
            case InterruptStatus:
                // Write 1 to clear (2.3.6); only level-triggered timers ever set a bit.
                _status &= ~(value & InterruptStatusImplemented);
                return;
            case MainCounter:
                // The spec wants the counter halted for this; a running counter is re-based, as bhyve does.
                SetCounter((CounterAt(_now) & ~mask) | value);
                return;
        }
        if (TimerOf(reg) is not { } n)
        {
            MissedWrites++;
            return;
        }
        switch ((reg - TimerBase) % TimerStride)
        {
            case TimerConfigOffset: WriteTimerConfig(n, value, mask); break;
            case TimerComparatorOffset: WriteComparator(_timers[n], value, mask); break;
            case TimerFsbRouteOffset: _timers[n].FsbRoute = (_timers[n].FsbRoute & ~mask) | value; break;
            default: MissedWrites++; break;
        }
    }

    private void WriteConfiguration(ulong config)
    {
        var wasEnabled = Enabled;
        if (!wasEnabled && (config & Enable) != 0)
        {
            // The counter starts from its held value; matches count from there.
            _baseTimestamp = _now;
            foreach (var t in _timers) t.Evaluated = _counterBase;
        }
        else if (wasEnabled && (config & Enable) == 0)
        {
            _counterBase = CounterAt(_now); // halts; Sync has compared every value up to here
        }
        _config = config;
    }

    private void SetCounter(ulong value)
    {
        _counterBase = value;
        _baseTimestamp = _now;
        foreach (var t in _timers) t.Evaluated = value;
    }

    private void WriteTimerConfig(int n, ulong value, ulong mask)
    {
        var t = _timers[n];
        var written = (t.Config & ~mask) | value;
        var config = (t.Config & ~TimerConfigWritable) | (written & TimerConfigWritable);
        var route = (int)((config & RouteMask) >> RouteShift);
        if ((RouteCapability & (1u << route)) == 0)
            config = (config & ~RouteMask) | (t.Config & RouteMask); // not a capable pin: the route is unchanged
        if ((config & Mode32) != 0 && !t.Is32Bit)
        {
            // Entering 32-bit mode: the comparator and period become 32-bit registers (upper halves read 0).
            t.Comparator &= uint.MaxValue;
            t.Period &= uint.MaxValue;
        }
        t.Config = config;
        if (!t.IsLevel) _status &= ~(1UL << n); // the status bit means nothing for an edge timer (2.3.6)
        if (!t.InterruptsEnabled) t.PendingEdges = 0;
    }

    /// <summary>
    /// 2.3.9: in periodic mode a write sets the period, and also the accumulator when Tn_VAL_SET_CNF is set
    /// (QEMU and bhyve read it so; Linux writes the first compare with VAL_SET, then the period without).
    /// Tn_VAL_SET_CNF clears itself after the write. In 32-bit mode the upper half is not writable.
    /// </summary>
    private static void WriteComparator(HpetTimer t, ulong value, ulong mask)
    {
        mask &= t.ComparatorMask;
        value &= mask;
        if (t.IsPeriodic)
        {
            t.Period = (t.Period & ~mask) | value;
            if ((t.Config & ValueSet) != 0) t.Comparator = (t.Comparator & ~mask) | value;
        }
        else
        {
            t.Comparator = (t.Comparator & ~mask) | value;
        }
        t.Config &= ~ValueSet;
    }

    // ---- matching and interrupts ----

    private enum RouteKind { None, Pin, Fsb }

    private (RouteKind Kind, int Gsi) RouteOf(int n)
    {
        var t = _timers[n];
        if (LegacyReplacement && n < 2) return (RouteKind.Pin, n == 0 ? LegacyTimer0Irq : LegacyTimer1Irq);
        if ((t.Config & FsbEnable) != 0) return (RouteKind.Fsb, -1);
        var pin = (int)((t.Config & RouteMask) >> RouteShift);
        return (RouteCapability & (1u << pin)) != 0 ? (RouteKind.Pin, pin) : (RouteKind.None, -1);
    }

    /// <summary>A level timer whose line is a pin (an FSB message is an edge whatever the trigger bit says).</summary>
    private bool HoldsLine(int n) => _timers[n].IsLevel && RouteOf(n).Kind == RouteKind.Pin;

    /// <summary>Finds the matches up to now, sends the edges that are due, and sets the lines.</summary>
    private void Sync()
    {
        _now = _clock.GetTimestamp();
        if (Enabled)
        {
            var counter = CounterAt(_now);
            for (var n = 0; n < TimerCount; n++)
            {
                var matches = _timers[n].Advance(counter);
                if (matches > 0) OnMatches(n, matches);
            }
        }
        for (var n = 0; n < TimerCount; n++) SendEdges(n, _now);
        UpdateLines();
    }

    private void OnMatches(int n, long matches)
    {
        var t = _timers[n];
        if (t.IsLevel) _status |= 1UL << n;
        if (!t.InterruptsEnabled || RouteOf(n).Kind == RouteKind.None) return;
        if (HoldsLine(n))
        {
            CoalescedMatches += matches - 1; // the line is one level however many matches raised it
            return;
        }
        t.PendingEdges += matches;
    }

    private void SendEdges(int n, long now)
    {
        var t = _timers[n];
        if (t.PendingEdges == 0) return;
        if (t.LastEdge is { } last && now < last + _minimumInterval) return; // NextDeadline brings us back
        var (kind, gsi) = RouteOf(n);
        if (!t.InterruptsEnabled || !Enabled || kind == RouteKind.None)
        {
            t.PendingEdges = 0;
            return;
        }
        CoalescedMatches += t.PendingEdges - 1;
        t.PendingEdges = 0;
        t.LastEdge = now;
        Interrupts++;
        if (kind == RouteKind.Fsb) _sink.Msi(t.FsbRoute >> FsbAddressShift, (uint)t.FsbRoute);
        else _sink.PulseIrq(gsi);
    }

    /// <summary>Drives each level-triggered timer's pin to (status bit AND interrupt enabled AND counter enabled), OR-ed per GSI.</summary>
    private void UpdateLines()
    {
        Span<bool> seen = stackalloc bool[TimerCount];
        for (var n = 0; n < TimerCount; n++)
        {
            if (seen[n] || !HoldsLine(n)) continue;
            var gsi = RouteOf(n).Gsi;
            var level = false;
            for (var m = n; m < TimerCount; m++)
            {
                if (!HoldsLine(m) || RouteOf(m).Gsi != gsi) continue;
                seen[m] = true;
                level |= Enabled && _timers[m].InterruptsEnabled && (_status & (1UL << m)) != 0;
            }
            Drive(gsi, level);
        }
        // Lines no level timer drives any more (re-routed, switched to edge or FSB) go low.
        foreach (var gsi in _lines.Where(l => l.Value).Select(l => l.Key).ToArray())
        {
            var driven = false;
            for (var n = 0; n < TimerCount; n++) driven |= HoldsLine(n) && RouteOf(n).Gsi == gsi;
            if (!driven) Drive(gsi, false);
        }
    }

    private void Drive(int gsi, bool level)
    {
        if (_lines.GetValueOrDefault(gsi) == level) return;
        _lines[gsi] = level;
        if (level) Interrupts++;
        _sink.SetIrq(gsi, level);
    }

    /// <summary>
    /// The timestamp at which the next interrupt is due, or null if none will come: the next match of each
    /// timer whose match would send something, or the end of the minimum interval for held-back edges.
    /// </summary>
    public long? NextDeadline()
    {
        if (!Enabled) return null;
        long? next = null;
        var counter = Counter;
        for (var n = 0; n < TimerCount; n++)
        {
            var t = _timers[n];
            if (!t.InterruptsEnabled || RouteOf(n).Kind == RouteKind.None) continue;
            long at;
            if (t.PendingEdges > 0)
            {
                at = t.LastEdge.GetValueOrDefault() + _minimumInterval;
            }
            else
            {
                // A raised level line changes nothing at further matches; the status write re-arms us.
                if (HoldsLine(n) && (_status & (1UL << n)) != 0) continue;
                var ticks = t.TicksToMatch(t.Evaluated);
                if (ticks == 0) continue;
                var match = t.Evaluated + ticks;
                if (match - counter > HorizonTicks && ticks > HorizonTicks) match = counter + HorizonTicks;
                at = TimestampOfCounter(match);
                if (!HoldsLine(n) && t.LastEdge is { } last) at = Math.Max(at, last + _minimumInterval);
            }
            if (next is null || at < next) next = at;
        }
        return next;
    }

    /// <summary>The timer service's callback: delivers what has come due.</summary>
    public void OnTimer() => Sync();

    // ---- snapshots ----

    /// <summary>The registers now (after delivering what is due, so the saved counter and status agree).</summary>
    public HpetState Save()
    {
        Sync();
        return new HpetState(_config, _status, CounterAt(_now),
            _timers.Select(t => new HpetTimerState(t.Config, t.Comparator, t.Period, t.FsbRoute, t.Evaluated, t.PendingEdges)).ToArray(),
            _lines.Where(l => l.Value).Select(l => l.Key).Order().ToArray());
    }

    /// <summary>
    /// An HPET in <paramref name="state"/>, its counter resuming from the saved value at the clock's present time.
    /// The lines it had raised are recorded as raised, not sent again: the interrupt controllers restore their
    /// own pin levels.
    /// </summary>
    public static Hpet Restore(HpetState state, TimeProvider clock, IHpetInterruptSink? sink = null, TimeSpan? minimumInterruptInterval = null)
    {
        var hpet = new Hpet(clock, sink, minimumInterruptInterval)
        {
            _config = state.Configuration & ConfigurationWritable,
            _status = state.InterruptStatus & InterruptStatusImplemented,
            _counterBase = state.Counter,
        };
        for (var i = 0; i < TimerCount && i < state.Timers.Length; i++)
        {
            var s = state.Timers[i];
            hpet._timers[i] = new HpetTimer
            {
                Config = TimerCapabilities | (s.Config & TimerConfigWritable),
                Comparator = s.Comparator,
                Period = s.Period,
                FsbRoute = s.FsbRoute,
                Evaluated = s.Evaluated,
                PendingEdges = s.PendingEdges,
            };
        }
        foreach (var gsi in state.RaisedLines) hpet._lines[gsi] = true;
        return hpet;
    }

    /// <summary>Back to power-on state (a VM reset): halted counter at 0, timers unconfigured, lines low.</summary>
    public void Reset()
    {
        _config = 0;
        _status = 0;
        _counterBase = 0;
        _baseTimestamp = _clock.GetTimestamp();
        for (var i = 0; i < TimerCount; i++) _timers[i] = new HpetTimer();
        foreach (var gsi in _lines.Keys.ToArray()) Drive(gsi, false);
    }
}
