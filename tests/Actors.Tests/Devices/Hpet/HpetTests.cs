using Actorvisor.Actors.Cpu.Lapic;
using Actorvisor.Actors.Devices.Hpet;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Actors.Devices.Hpet.HpetRegisters;

namespace Actorvisor.Actors.Tests.Devices.Hpet;

/// <summary>
/// The HPET by the IA-PC HPET specification 1.0a, register writes as a guest driver makes them, clocked by a
/// FakeTimeProvider whose 100 ns timestamp unit is exactly one period of the 10 MHz main counter.
/// </summary>
public class HpetTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 26, 3, 0, 0, TimeSpan.Zero));
    private readonly RecordingHpetSink _sink;
    private readonly Actorvisor.Actors.Devices.Hpet.Hpet _hpet;

    public HpetTests()
    {
        Assert.Equal(CounterHz, _clock.TimestampFrequency); // one timestamp unit = one counter tick below
        _sink = new RecordingHpetSink(() => _hpet!.Counter);
        _hpet = new Actorvisor.Actors.Devices.Hpet.Hpet(_clock, _sink, minimumInterruptInterval: TimeSpan.Zero);
    }

    // ---- helpers: the accesses a driver makes ----
    private uint R32(ulong offset) => (uint)_hpet.Read(offset, 4);
    private ulong R64(ulong offset) => _hpet.Read(offset, 8);
    private void W32(ulong offset, uint value) => _hpet.Write(offset, 4, value);
    private void W64(ulong offset, ulong value) => _hpet.Write(offset, 8, value);

    private void Ticks(long ticks) => _clock.Advance(TimeSpan.FromTicks(ticks));

    /// <summary>Runs the host timer the way the actor does, until the counter reaches <paramref name="counter"/>.</summary>
    private void RunTo(ulong counter)
    {
        var end = _hpet.TimestampOfCounter(counter);
        while (_hpet.NextDeadline() is { } d && d <= end)
        {
            _clock.Advance(TimeSpan.FromTicks(Math.Max(0, d - _clock.GetTimestamp())));
            _hpet.OnTimer();
        }
        _clock.Advance(TimeSpan.FromTicks(Math.Max(0, end - _clock.GetTimestamp())));
        _hpet.OnTimer();
        Assert.Equal(counter, _hpet.Counter);
    }

    private void ConfigureTimer(int n, ulong bits) => W32(TimerConfig(n), (uint)bits);

    private static ulong Route(int pin) => (ulong)pin << RouteShift;

    // ---- 2.3.4, 2.3.8: capability registers ----

    [Fact]
    public void CapabilitiesDescribeEightSixtyFourBitTimersAtTenMegahertz()
    {
        // REV_ID 1, NUM_TIM_CAP 7 (8 timers), COUNT_SIZE_CAP, LEG_RT_CAP, vendor 8086h.
        Assert.Equal(0x8086_A701u, R32(Capabilities));
        Assert.Equal(100_000_000u, R32(Capabilities + 4));                   // 100 ns in femtoseconds
        Assert.Equal(0x05F5_E100_8086_A701UL, R64(Capabilities));
        Assert.Equal(10_000_000UL, 1_000_000_000_000_000UL / (R64(Capabilities) >> 32)); // the guest's frequency
        W64(Capabilities, 0);                                                // read-only
        Assert.Equal(0x8086_A701u, R32(Capabilities));
        for (var n = 0; n < TimerCount; n++)
        {
            // Tn_PER_INT_CAP, Tn_SIZE_CAP, Tn_FSB_INT_DEL_CAP; Tn_INT_ROUTE_CAP = IOAPIC pins 16-23.
            Assert.Equal(0x0000_8030u, R32(TimerConfig(n)));
            Assert.Equal(0x00FF_0000u, R32(TimerConfig(n) + 4));
            Assert.Equal(ulong.MaxValue, R64(TimerComparator(n)));           // comparators power on to all ones
        }
        Assert.Equal(0UL, R64(Configuration));
        Assert.Equal(0UL, R64(InterruptStatus));
        Assert.Equal(0UL, R64(MainCounter));
    }

    [Fact]
    public void UnimplementedOffsetsReadZeroAndIgnoreWrites()
    {
        foreach (var offset in new ulong[] { 0x008, 0x018, 0x028, 0x0E0, 0x0F8, TimerBase + 0x18, TimerConfig(TimerCount), 0x3F8 })
        {
            W64(offset, ulong.MaxValue);
            Assert.Equal(0UL, R64(offset));
        }
        Assert.Equal(0UL, _hpet.Read(WindowSize, 4));                         // outside the block
        Assert.Equal(0UL, _hpet.Read(Capabilities + 4, 8));                   // crosses a register
        Assert.Equal(2, _hpet.MissedReads);
    }

    [Fact]
    public void ReservedAndReadOnlyBitsAreKeptOnWrite()
    {
        W64(Configuration, ulong.MaxValue & ~Enable);
        Assert.Equal(LegacyRoute, R64(Configuration));                        // only ENABLE_CNF and LEG_RT_CNF exist
        // Everything writable, with route 16 (a capable pin): caps stay, reserved bits 0, 7, 15-31 stay 0.
        W32(TimerConfig(2), 0xFFFF_FFFFu & ~(uint)RouteMask | (uint)Route(16));
        Assert.Equal((uint)(LevelTriggered | InterruptEnable | Periodic | PeriodicCapable | Size64Capable | ValueSet |
                            Mode32 | Route(16) | FsbEnable | FsbCapable), R32(TimerConfig(2)));
        W32(TimerConfig(2) + 4, 0);                                           // Tn_INT_ROUTE_CAP is read-only
        Assert.Equal(RouteCapability, R32(TimerConfig(2) + 4));
    }

    // ---- 2.3.7: main counter ----

    [Fact]
    public void CounterRunsOnlyWhileEnabledAtTheStatedPeriod()
    {
        Ticks(10_000);
        Assert.Equal(0UL, R64(MainCounter));                                  // halted at power-on
        W32(Configuration, (uint)Enable);
        _clock.Advance(TimeSpan.FromSeconds(1));
        // One second is 10^15 fs; at COUNTER_CLK_PERIOD fs per tick that is exactly:
        var period = R64(Capabilities) >> 32;
        Assert.Equal(1_000_000_000_000_000UL / period, R64(MainCounter));
        _clock.Advance(TimeSpan.FromMicroseconds(1.5));                      // 15 ticks
        Assert.Equal(10_000_015UL, R64(MainCounter));
        W32(Configuration, 0);                                                // halt
        _clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(10_000_015UL, R64(MainCounter));
        W32(Configuration, (uint)Enable);                                     // resumes from the held value
        Ticks(5);
        Assert.Equal(10_000_020UL, R64(MainCounter));
    }

    [Fact]
    public void CounterIsWritableWhileHaltedBy32BitHalves()
    {
        W32(MainCounter, 0x89AB_CDEF);                                        // Linux's hpet_writel pair
        W32(MainCounter + 4, 0x0123_4567);
        Assert.Equal(0x0123_4567_89AB_CDEFUL, R64(MainCounter));
        Assert.Equal(0x89AB_CDEFu, R32(MainCounter));
        Assert.Equal(0x0123_4567u, R32(MainCounter + 4));
        Assert.Equal(0xCDu, _hpet.Read(MainCounter + 1, 1));                 // byte and word reads too
        Assert.Equal(0x4567u, _hpet.Read(MainCounter + 4, 2));
        W32(Configuration, (uint)Enable);
        Ticks(100);
        Assert.Equal(0x0123_4567_89AB_CE53UL, R64(MainCounter));
        W64(MainCounter, 0);                                                  // a 64-bit write, while running: re-based
        Ticks(7);
        Assert.Equal(7UL, R64(MainCounter));
    }

    // ---- 2.3.9.2.1: non-periodic (one-shot) ----

    [Fact]
    public void OneShotInterruptsOnceWhenTheCounterReachesTheComparator()
    {
        ConfigureTimer(2, InterruptEnable | Route(20));                       // edge, IOAPIC pin 20
        W64(TimerComparator(2), 1000);
        W32(Configuration, (uint)Enable);
        Assert.Equal(_hpet.TimestampOfCounter(1000), _hpet.NextDeadline());
        Ticks(999);
        _hpet.OnTimer();
        Assert.Empty(_sink.Events);
        Ticks(1);
        _hpet.OnTimer();
        Assert.Equal(["pulse 20 @1000"], _sink.Events);
        Assert.Null(_hpet.NextDeadline());                                    // a 64-bit one-shot is spent
        RunTo(50_000_000);                                                    // 5 s later: nothing more
        Assert.Single(_sink.Events);
        Assert.Equal(1000UL, R64(TimerComparator(2)));                        // a one-shot comparator does not move
        Assert.Equal(0UL, R64(InterruptStatus));                              // edge: no status bit
    }

    [Fact]
    public void ComparatorWrittenInThePastDoesNotFireUntilTheCounterComesBackToIt()
    {
        W32(Configuration, (uint)Enable);
        Ticks(5000);
        ConfigureTimer(3, InterruptEnable | Route(17));
        W64(TimerComparator(3), 4000);                                        // already passed (64-bit)
        RunTo(100_000);
        Assert.Empty(_sink.Events);
        W32(Configuration, 0);
        W64(MainCounter, 3990);                                               // back before it
        W32(Configuration, (uint)Enable);
        RunTo(4010);
        Assert.Equal(["pulse 17 @4000"], _sink.Events);
    }

    // ---- 2.3.9.2.2: periodic, Tn_VAL_SET_CNF ----

    [Fact]
    public void PeriodicWithValueSetFiresAtComparatorThenEveryPeriod()
    {
        // Linux's sequence: VAL_SET with the first compare, then the period in a second write.
        ConfigureTimer(0, InterruptEnable | Periodic | ValueSet | Route(18));
        Assert.NotEqual(0u, R32(TimerConfig(0)) & (uint)ValueSet);
        // A 64-bit write: VAL_SET clears after any comparator write, so a 64-bit accumulator set by 32-bit
        // halves would keep the power-on upper half (Linux uses 32-bit mode here).
        W64(TimerComparator(0), 500);                                         // accumulator and period = 500
        Assert.Equal(0u, R32(TimerConfig(0)) & (uint)ValueSet);               // self-clearing
        W32(TimerComparator(0), 200);                                         // VAL_SET clear: the period only
        Assert.Equal(500UL, R64(TimerComparator(0)));
        W32(Configuration, (uint)Enable);
        RunTo(1_350);
        Assert.Equal(["pulse 18 @500", "pulse 18 @700", "pulse 18 @900", "pulse 18 @1100", "pulse 18 @1300"], _sink.Events);
        Assert.Equal(1500UL, R64(TimerComparator(0)));                        // the accumulator, read back
    }

    [Fact]
    public void PeriodicCatchesUpAfterALateTimerWithOneEdgeAndKeepsItsPhase()
    {
        ConfigureTimer(2, InterruptEnable | Periodic | ValueSet | Route(19));
        W64(TimerComparator(2), 100);
        W64(TimerComparator(2), 100);
        W32(Configuration, (uint)Enable);
        Ticks(1050);                                                          // host timer 10 periods late
        _hpet.OnTimer();
        Assert.Equal(["pulse 19 @1050"], _sink.Events);
        Assert.Equal(10, _hpet.CoalescedMatches + 1);                         // matches at 100..1000
        Assert.Equal(1100UL, R64(TimerComparator(2)));
        Assert.Equal(_hpet.TimestampOfCounter(1100), _hpet.NextDeadline());   // no drift
    }

    [Fact]
    public void MinimumIntervalBoundsTheEdgesOfATinyPeriod()
    {
        var hpet = new Actorvisor.Actors.Devices.Hpet.Hpet(_clock, _sink); // default 50 µs minimum
        hpet.Write(TimerConfig(2), 4, InterruptEnable | Periodic | ValueSet | Route(16));
        hpet.Write(TimerComparator(2), 8, 10);
        hpet.Write(TimerComparator(2), 8, 10);                                // 1 µs period
        hpet.Write(Configuration, 4, Enable);
        var end = hpet.TimestampOfCounter(10_000_000);                        // one second
        var wakeups = 0;
        while (hpet.NextDeadline() is { } d && d <= end)
        {
            _clock.Advance(TimeSpan.FromTicks(Math.Max(0, d - _clock.GetTimestamp())));
            hpet.OnTimer();
            wakeups++;
        }
        var pulses = _sink.Events.Count;
        Assert.InRange(pulses, 19_000, 20_001);                               // one per 50 µs, not 10^6
        Assert.InRange(wakeups, pulses, pulses + 1);                          // the host timer does not spin
        Assert.InRange(hpet.Interrupts + hpet.CoalescedMatches, 999_000, 1_000_000); // every match is accounted for
    }

    // ---- Tn_32MODE_CNF ----

    [Fact]
    public void ThirtyTwoBitModeComparesTheLowHalfAndWraps()
    {
        W64(MainCounter, 0xFFFF_FFF0);
        ConfigureTimer(3, InterruptEnable | Mode32 | Route(21));
        Assert.Equal(0xFFFF_FFFFUL, R64(TimerComparator(3)));                // upper half reads 0 in 32-bit mode
        W64(TimerComparator(3), 0xAAAA_AAAA_0000_0010);                       // upper half not writable
        Assert.Equal(0x10UL, R64(TimerComparator(3)));
        W32(Configuration, (uint)Enable);
        RunTo(0x1_0000_0020);
        Assert.Equal(["pulse 21 @4294967312"], _sink.Events);                // 0x1_0000_0010: low half equal after the wrap
        // One-shot 32-bit matches again each time the low half comes round (2^32 ticks, ~429 s).
        Assert.Equal(_hpet.TimestampOfCounter(0x2_0000_0010), _hpet.NextDeadline());
        // A comparator written equal to the present low half has just been passed: next equality is a wrap away.
        W32(TimerComparator(3), 0x20);
        Assert.Equal(_hpet.TimestampOfCounter(0x2_0000_0020), _hpet.NextDeadline());
    }

    [Fact]
    public void SixtyFourBitModeDoesNotMatchTheLowHalf()
    {
        // The same programming without Tn_32MODE_CNF: the 64-bit comparator 0x10 is behind the counter.
        W64(MainCounter, 0xFFFF_FFF0);
        ConfigureTimer(3, InterruptEnable | Route(21));
        W64(TimerComparator(3), 0x10);
        W32(Configuration, (uint)Enable);
        RunTo(0x1_0000_0020);
        Assert.Empty(_sink.Events);
    }

    [Fact]
    public void ThirtyTwoBitPeriodicAccumulatorWrapsModulo2To32()
    {
        W64(MainCounter, 0xFFFF_FE00);
        ConfigureTimer(4, InterruptEnable | Periodic | ValueSet | Mode32 | Route(22));
        W32(TimerComparator(4), 0xFFFF_FF00);
        W32(TimerComparator(4), 0x200);
        W32(Configuration, (uint)Enable);
        RunTo(0x1_0000_02FF);
        Assert.Equal(["pulse 22 @4294967040", "pulse 22 @4294967552"], _sink.Events); // 0xFFFFFF00, 0x1_00000100
        Assert.Equal(0x300UL, R64(TimerComparator(4)));
    }

    [Fact]
    public void EnteringThirtyTwoBitModeTruncatesComparatorAndPeriod()
    {
        W64(TimerComparator(1), 0x1234_5678_9ABC_DEF0);
        ConfigureTimer(1, Mode32);
        Assert.Equal(0x9ABC_DEF0UL, R64(TimerComparator(1)));
        ConfigureTimer(1, 0);                                                 // back to 64-bit: the upper half stays 0
        Assert.Equal(0x9ABC_DEF0UL, R64(TimerComparator(1)));
    }

    // ---- 2.3.6 and Tn_INT_TYPE_CNF: level and edge ----

    [Fact]
    public void LevelTriggeredTimerHoldsItsLineUntilStatusIsWrittenOne()
    {
        ConfigureTimer(2, LevelTriggered | InterruptEnable | Periodic | ValueSet | Route(21));
        W64(TimerComparator(2), 100);
        W64(TimerComparator(2), 100);
        W32(Configuration, (uint)Enable);
        RunTo(150);
        Assert.Equal(["high 21 @100"], _sink.Events);
        Assert.Equal(1UL << 2, R64(InterruptStatus));
        RunTo(450);                                                           // more matches: the line just stays high
        Assert.Single(_sink.Events);
        W32(InterruptStatus, 1u << 3);                                        // another timer's bit, and 0s: no effect
        Assert.True(_hpet.LineLevel(21));
        W32(InterruptStatus, 1u << 2);                                        // write 1 to clear
        Assert.Equal(0UL, R64(InterruptStatus));
        Assert.Equal(["high 21 @100", "low 21 @450"], _sink.Events);
        RunTo(520);                                                           // the next match raises it again
        Assert.Equal("high 21 @500", _sink.Events[^1]);
    }

    [Fact]
    public void EdgeTriggeredTimerPulsesAndLeavesStatusClear()
    {
        ConfigureTimer(5, InterruptEnable | Periodic | ValueSet | Route(23));
        W64(TimerComparator(5), 100);
        W64(TimerComparator(5), 100);
        W32(Configuration, (uint)Enable);
        RunTo(250);
        Assert.Equal(["pulse 23 @100", "pulse 23 @200"], _sink.Events);
        Assert.Equal(0UL, R64(InterruptStatus));
        Assert.False(_hpet.LineLevel(23));
    }

    [Fact]
    public void LevelStatusIsSetWithInterruptsDisabledButTheLineStaysLow()
    {
        // Tn_INT_ENB_CNF = 0: "the timer will still operate and generate appropriate status bits".
        ConfigureTimer(6, LevelTriggered | Route(16));
        W64(TimerComparator(6), 50);
        W32(Configuration, (uint)Enable);
        RunTo(60);
        Assert.Equal(1UL << 6, R64(InterruptStatus));
        Assert.Empty(_sink.Events);
        ConfigureTimer(6, LevelTriggered | InterruptEnable | Route(16));     // enabling with status set raises it
        Assert.Equal(["high 16 @60"], _sink.Events);
        W32(Configuration, 0);                                                // halting the block drops it; status kept
        Assert.Equal("low 16 @60", _sink.Events[^1]);
        Assert.Equal(1UL << 6, R64(InterruptStatus));
    }

    // ---- 2.3.5 LegacyReplacement ----

    [Fact]
    public void LegacyReplacementRoutesTimer0ToIrq0AndTimer1ToIrq8()
    {
        ConfigureTimer(0, InterruptEnable | Route(16) | FsbEnable);           // own route and FSB are overridden
        ConfigureTimer(1, InterruptEnable | Route(17));
        ConfigureTimer(2, InterruptEnable | Route(18));                       // timers 2+ keep their routes
        W64(TimerComparator(0), 100);
        W64(TimerComparator(1), 200);
        W64(TimerComparator(2), 300);
        W32(Configuration, (uint)(Enable | LegacyRoute));
        Assert.True(_hpet.LegacyReplacement);
        RunTo(400);
        Assert.Equal(["pulse 0 @100", "pulse 8 @200", "pulse 18 @300"], _sink.Events);
    }

    [Fact]
    public void WithoutLegacyReplacementTimer0UsesItsOwnRoute()
    {
        ConfigureTimer(0, InterruptEnable | Route(16));
        W64(TimerComparator(0), 100);
        W32(Configuration, (uint)Enable);
        RunTo(150);
        Assert.Equal(["pulse 16 @100"], _sink.Events);
    }

    // ---- Tn_INT_ROUTE_CNF against Tn_INT_ROUTE_CAP ----

    [Fact]
    public void RouteToACapablePinIsTakenAndANonCapablePinIsRefused()
    {
        ConfigureTimer(3, InterruptEnable | Route(22));
        Assert.Equal(22u, (R32(TimerConfig(3)) & (uint)RouteMask) >> RouteShift);
        ConfigureTimer(3, InterruptEnable | Route(5));                        // pin 5 is not in the cap mask
        Assert.Equal(22u, (R32(TimerConfig(3)) & (uint)RouteMask) >> RouteShift); // unchanged
        ConfigureTimer(3, InterruptEnable | Route(24));                       // beyond the IOAPIC's pins 16-23 mask
        Assert.Equal(22u, (R32(TimerConfig(3)) & (uint)RouteMask) >> RouteShift);
        W64(TimerComparator(3), 10);
        W32(Configuration, (uint)Enable);
        RunTo(20);
        Assert.Equal(["pulse 22 @10"], _sink.Events);
    }

    [Fact]
    public void PowerOnRouteZeroIsNoPinSoOnlyStatusIsSet()
    {
        ConfigureTimer(4, LevelTriggered | InterruptEnable);                  // route 0: not capable, never written
        W64(TimerComparator(4), 10);
        W32(Configuration, (uint)Enable);
        RunTo(20);
        Assert.Empty(_sink.Events);
        Assert.Equal(1UL << 4, R64(InterruptStatus));
    }

    [Fact]
    public void ReroutingARaisedLevelLineMovesIt()
    {
        ConfigureTimer(2, LevelTriggered | InterruptEnable | Route(20));
        W64(TimerComparator(2), 10);
        W32(Configuration, (uint)Enable);
        RunTo(20);
        ConfigureTimer(2, LevelTriggered | InterruptEnable | Route(21));
        Assert.Equal(["high 20 @10", "high 21 @20", "low 20 @20"], _sink.Events);
        ConfigureTimer(2, InterruptEnable | Route(21));                       // to edge: status cleared, line dropped
        Assert.Equal("low 21 @20", _sink.Events[^1]);
        Assert.Equal(0UL, R64(InterruptStatus));
    }

    // ---- 2.3.10 FSB delivery ----

    [Fact]
    public void FsbRouteSendsAnMsiInsteadOfAPin()
    {
        ConfigureTimer(4, InterruptEnable | FsbEnable | Route(20));
        W32(TimerFsbRoute(4), 0x0000_0041);                                   // Tn_FSB_INT_VAL: fixed, vector 41h
        W32(TimerFsbRoute(4) + 4, 0xFEE0_1000);                               // Tn_FSB_INT_ADDR: APIC ID 1
        Assert.Equal(0xFEE0_1000_0000_0041UL, R64(TimerFsbRoute(4)));
        W64(TimerComparator(4), 100);
        W32(Configuration, (uint)Enable);
        RunTo(150);
        Assert.Equal(["msi FEE01000:00000041 @100"], _sink.Events);
        var message = MsiDecoder.Decode(_sink.Msis[0].Address, _sink.Msis[0].Data);
        Assert.NotNull(message);
        Assert.Equal(0x41, (int)message.Vector);
        Assert.Equal(1, (int)message.Destination.Id);
        ConfigureTimer(4, InterruptEnable | Route(20));                       // FSB off: the pin again
        W64(TimerComparator(4), 200);
        RunTo(250);
        Assert.Equal("pulse 20 @200", _sink.Events[^1]);
    }

    // ---- access widths ----

    [Fact]
    public void SixtyFourBitRegistersTakeThirtyTwoBitHalves()
    {
        W32(TimerComparator(2), 0x9ABC_DEF0);
        W32(TimerComparator(2) + 4, 0x1234_5678);
        Assert.Equal(0x1234_5678_9ABC_DEF0UL, R64(TimerComparator(2)));
        Assert.Equal(0x1234_5678u, R32(TimerComparator(2) + 4));
        W32(TimerComparator(2) + 4, 0);                                       // one half alone leaves the other
        Assert.Equal(0x9ABC_DEF0UL, R64(TimerComparator(2)));
        W32(TimerFsbRoute(2) + 4, 0xFEE0_0000);
        Assert.Equal(0xFEE0_0000_0000_0000UL, R64(TimerFsbRoute(2)));
        _hpet.Write(TimerConfig(2) + 1, 1, (ulong)(Route(17) >> 8));        // a byte write to bits 15:8 (route 17)
        Assert.Equal(17u, (R32(TimerConfig(2)) & (uint)RouteMask) >> RouteShift);
        W32(Configuration + 4, 0xFFFF_FFFF);                                  // the upper half of configuration is reserved
        Assert.Equal(0UL, R64(Configuration));
    }

    [Fact]
    public void StatusOfALevelTimerCanBeClearedByEitherWidth()
    {
        ConfigureTimer(1, LevelTriggered | Route(16));
        W64(TimerComparator(1), 5);
        W32(Configuration, (uint)Enable);
        RunTo(10);
        Assert.Equal(2UL, R64(InterruptStatus));
        W64(InterruptStatus, 2);
        Assert.Equal(0UL, R64(InterruptStatus));
    }

    [Fact]
    public void RandomGuestAccessesNeverThrowAndDeadlinesStayAhead()
    {
        var hpet = new Actorvisor.Actors.Devices.Hpet.Hpet(_clock, _sink); // default minimum interval
        var random = new Random(1234);
        int[] sizes = [1, 2, 4, 8, 3, 16];
        for (var i = 0; i < 20_000; i++)
        {
            // Mostly real registers with small values (so timers get enabled, routed and fire), some noise.
            ulong[] registers = [Configuration, InterruptStatus, MainCounter,
                TimerConfig(random.Next(TimerCount)), TimerComparator(random.Next(TimerCount)), TimerFsbRoute(random.Next(TimerCount))];
            var offset = random.Next(4) == 0 ? (ulong)random.Next(0, 0x480) : registers[random.Next(registers.Length)] + (ulong)(4 * random.Next(2));
            var size = random.Next(4) == 0 ? sizes[random.Next(sizes.Length)] : 4;
            var value = random.Next(2) == 0 ? (ulong)random.Next(0, 0x8000) : (ulong)random.NextInt64() ^ (ulong)random.NextInt64() << 1;
            if (random.Next(2) == 0) hpet.Write(offset, size, value);
            else hpet.Read(offset, size);
            _clock.Advance(TimeSpan.FromTicks(random.Next(0, 2000)));
            hpet.OnTimer();
            // Everything due has been delivered, so the next deadline is in the future (no busy re-arming).
            if (hpet.NextDeadline() is { } d) Assert.True(d > _clock.GetTimestamp(), $"deadline {d} not after now at step {i}");
        }
        Assert.True(hpet.MissedReads + hpet.MissedWrites > 0);
        Assert.True(hpet.Interrupts > 0);                                     // the random programming did fire timers
    }

    // ---- snapshots ----

    private static string Json(HpetState s) => System.Text.Json.JsonSerializer.Serialize(s);

    [Fact]
    public void FreshHpetSavesPowerOnState() => Assert.Equal(Json(HpetState.PowerOn), Json(_hpet.Save()));

    [Fact]
    public void SaveRestoreKeepsRegistersAndTheCounterResumesFromTheSavedValue()
    {
        ConfigureTimer(2, LevelTriggered | InterruptEnable | Route(20));
        W64(TimerComparator(2), 10);
        ConfigureTimer(5, InterruptEnable | Periodic | ValueSet | Mode32 | Route(23));
        W32(TimerComparator(5), 100);
        W32(TimerComparator(5), 100);
        W64(TimerFsbRoute(6), 0xFEE0_0000_0000_0051);
        W32(Configuration, (uint)(Enable | LegacyRoute));
        RunTo(250);
        var saved = _hpet.Save();
        Assert.Equal([20], saved.RaisedLines);
        _clock.Advance(TimeSpan.FromSeconds(10));                             // time passes while the VM is saved
        var sink = new RecordingHpetSink(() => 0);
        var restored = Actorvisor.Actors.Devices.Hpet.Hpet.Restore(saved, _clock, sink, TimeSpan.Zero);
        Assert.Equal(Json(saved), Json(restored.Save()));
        Assert.Equal(250UL, restored.Counter);
        Assert.Empty(sink.Events);                                            // raised lines are not sent again
        Assert.Equal(_hpet.Read(Capabilities, 8), restored.Read(Capabilities, 8));
        Assert.Equal(restored.TimestampOfCounter(300), restored.NextDeadline()); // timer 5's next period
        restored.Write(InterruptStatus, 4, 1u << 2);
        Assert.Equal(["low 20 @0"], sink.Events);
    }

    [Fact]
    public void ResetReturnsToPowerOnAndDropsLines()
    {
        ConfigureTimer(2, LevelTriggered | InterruptEnable | Route(20));
        W64(TimerComparator(2), 10);
        W32(Configuration, (uint)Enable);
        RunTo(20);
        _hpet.Reset();
        Assert.Equal("low 20 @0", _sink.Events[^1]);
        Assert.Equal(0UL, R64(MainCounter));
        Assert.Equal(0UL, R64(Configuration));
        Assert.Equal(0UL, R64(InterruptStatus));
        Assert.Equal(0x8030u, R32(TimerConfig(2)));
        Assert.Equal(ulong.MaxValue, R64(TimerComparator(2)));
        Assert.Null(_hpet.NextDeadline());
        Assert.Equal(Json(HpetState.PowerOn), Json(_hpet.Save()));
        _hpet.Reset();                                                        // idempotent
        Assert.Equal(Json(HpetState.PowerOn), Json(_hpet.Save()));
    }
}

/// <summary>What the model sent, with the main counter value at the moment it sent it.</summary>
internal sealed class RecordingHpetSink(Func<ulong> counter) : IHpetInterruptSink
{
    public List<string> Events { get; } = new();
    public List<(ulong Address, uint Data)> Msis { get; } = new();

    public void SetIrq(int gsi, bool level) => Events.Add($"{(level ? "high" : "low")} {gsi} @{counter()}");
    public void PulseIrq(int gsi) => Events.Add($"pulse {gsi} @{counter()}");

    public void Msi(ulong address, uint data)
    {
        Msis.Add((address, data));
        Events.Add($"msi {address:X8}:{data:X8} @{counter()}");
    }
}
