using static Actorvisor.Actors.Devices.Hpet.HpetRegisters;

namespace Actorvisor.Actors.Devices.Hpet;

/// <summary>
/// One comparator of the HPET (2.3.8-2.3.10, 2.3.9.2): its configuration, comparator (the periodic
/// accumulator), period and FSB route, and how far the main counter has been compared against it.
/// A match is the main counter reaching the comparator's value (its low 32 bits in 32-bit mode), evaluated
/// for the counter values after <see cref="Evaluated"/>: a comparator written equal to the present count
/// has already been passed and matches next at the wrap, as in hardware that compares on each tick.
/// </summary>
internal sealed class HpetTimer
{
    /// <summary>The register as the guest reads it: capabilities (read-only) plus the configuration bits.</summary>
    public ulong Config = TimerCapabilities;
    public ulong Comparator = ComparatorPowerOn;
    /// <summary>The periodic increment (written through the comparator register in periodic mode).</summary>
    public ulong Period;
    public ulong FsbRoute;
    /// <summary>The main counter value up to which matches have been found (inclusive).</summary>
    public ulong Evaluated;
    /// <summary>Edge interrupts (pin pulses or FSB messages) matched but not yet sent: held back by the minimum interval.</summary>
    public long PendingEdges;
    /// <summary>Host timestamp of the last edge sent, for the minimum interval.</summary>
    public long? LastEdge;

    public bool Is32Bit => (Config & Mode32) != 0;
    public bool IsPeriodic => (Config & Periodic) != 0;
    public bool IsLevel => (Config & LevelTriggered) != 0;
    public bool InterruptsEnabled => (Config & InterruptEnable) != 0;
    public ulong ComparatorMask => Is32Bit ? uint.MaxValue : ulong.MaxValue;
    private ulong EffectivePeriod => Period & ComparatorMask;

    /// <summary>
    /// Counter ticks from <paramref name="from"/> to the next match after it, or 0 when there is none
    /// (a 64-bit comparator equal to <paramref name="from"/>: the next equality is 2^64 ticks away).
    /// </summary>
    public ulong TicksToMatch(ulong from)
    {
        if (Is32Bit)
        {
            var off = (uint)Comparator - (uint)from;
            return off == 0 ? 1UL << 32 : off;
        }
        return Comparator - from;
    }

    /// <summary>
    /// Compares the counter values after <see cref="Evaluated"/> through <paramref name="counter"/>; returns how
    /// many matches there were. In periodic mode each match adds the period to the comparator (2.3.9.2.2),
    /// modulo 2^32 in 32-bit mode; a one-shot 32-bit comparator matches again at every wrap of the low half.
    /// </summary>
    public long Advance(ulong counter)
    {
        var span = counter - Evaluated;
        Evaluated = counter;
        if (span == 0) return 0;
        var first = TicksToMatch(counter - span);
        if (first == 0 || first > span) return 0;
        var rest = span - first;
        if (IsPeriodic && EffectivePeriod != 0)
        {
            var p = EffectivePeriod;
            var n = 1 + rest / p;
            Comparator = (Comparator + n * p) & ComparatorMask;
            return n > long.MaxValue ? long.MaxValue : (long)n;
        }
        return Is32Bit ? 1 + (long)(rest >> 32) : 1;
    }
}
