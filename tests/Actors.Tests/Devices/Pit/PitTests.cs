using Actorvisor.Actors.Devices.Pit;
using Microsoft.Extensions.Time.Testing;

namespace Actorvisor.Actors.Tests.Devices.Pit;

/// <summary>
/// The 8254 by its datasheet (order no. 231164), clocked by a FakeTimeProvider stepped to exact CLK ticks.
/// A count written during tick T is loaded into the counting element on the next CLK pulse, tick T+1.
/// </summary>
public class PitTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 26, 1, 0, 0, TimeSpan.Zero));
    private readonly RecordingIrqLine _irq = new();
    private readonly Actorvisor.Actors.Devices.Pit.Pit _pit;

    public PitTests() => _pit = new Actorvisor.Actors.Devices.Pit.Pit(_clock, _irq, minimumIrqInterval: TimeSpan.Zero);

    private void At(long tick)
    {
        var target = _pit.TimestampOfTick(tick);
        var now = _clock.GetTimestamp();
        Assert.True(target >= now, "tests only move forward");
        _clock.Advance(TimeSpan.FromTicks((target - now) * TimeSpan.TicksPerSecond / _clock.TimestampFrequency));
        Assert.Equal(tick, _pit.CurrentTick);
    }

    private void Control(byte value) => _pit.Write(PitRegisters.ControlWord, value);

    private void Count16(int counter, int value)
    {
        _pit.Write(counter, (byte)value);
        _pit.Write(counter, (byte)(value >> 8));
    }

    private int Read16(int counter) => _pit.Read(counter) | _pit.Read(counter) << 8;

    private byte Status(int counter)
    {
        Control((byte)(0xC0 | PitRegisters.ReadBackNoCount | 1 << (counter + 1))); // read-back: status only
        return _pit.Read(counter);
    }

    /// <summary>Runs the timer the way the actor does, up to <paramref name="tick"/>.</summary>
    private void RunTimerTo(long tick)
    {
        var end = _pit.TimestampOfTick(tick);
        while (_pit.NextDeadline() is { } d && d <= end)
        {
            _clock.Advance(TimeSpan.FromTicks(Math.Max(0, d - _clock.GetTimestamp())));
            _pit.OnTimer();
        }
        _clock.Advance(TimeSpan.FromTicks(Math.Max(0, end - _clock.GetTimestamp())));
    }

    [Fact]
    public void PowerOnCounter0RunsMode3At18Hz()
    {
        // As a BIOS leaves it (and QEMU resets it): mode 3, count 65536, so IRQ 0 every 65536 ticks.
        Assert.Equal(_pit.TimestampOfTick(65536), _pit.NextDeadline());
        RunTimerTo(3 * 65536);
        Assert.Equal(3, _irq.Pulses);
        Assert.Equal(0x36, Status(0) & 0x3F); // LSB/MSB, mode 3, binary
    }

    [Fact]
    public void Mode0InterruptOnTerminalCountRisesNPlusOneTicksAfterTheWrite()
    {
        At(10);
        Control(0x30);                       // counter 0, LSB then MSB, mode 0, binary
        Assert.False(_pit.Out(0));          // OUT goes low on the control word
        Count16(0, 100);
        Assert.Equal(0x40 | 0x30, Status(0)); // null count until the next CLK pulse, OUT low
        At(11);
        Assert.Equal(0x30, Status(0));
        Assert.Equal(100, Read16(0));
        At(110);
        Assert.Equal(1, Read16(0));
        Assert.False(_pit.Out(0));
        Assert.Equal(_pit.TimestampOfTick(111), _pit.NextDeadline());
        At(111);
        Assert.True(_pit.Out(0));
        Assert.Equal(0, Read16(0));
        _pit.OnTimer();
        Assert.Equal(1, _irq.Pulses);
        At(112);
        Assert.Equal(0xFFFF, Read16(0)); // the counter wraps and keeps counting; OUT stays high
        Assert.True(_pit.Out(0));
        Assert.Null(_pit.NextDeadline());
    }

    [Fact]
    public void Mode0RewritingTheCountRestartsIt()
    {
        Control(0x30);
        Count16(0, 50);
        At(20);
        _pit.Write(0, 10);                   // first byte: counting stops, OUT low
        At(30);
        _pit.Write(0, 0);                    // second byte: the new count loads on the next pulse
        At(31);
        Assert.Equal(10, Read16(0));
        Assert.Equal(_pit.TimestampOfTick(41), _pit.NextDeadline());
    }

    [Fact]
    public void Mode2RateGeneratorOutIsLowForOneTickPerPeriod()
    {
        Control(0x34);                       // counter 0, LSB/MSB, mode 2
        Count16(0, 10);
        var outs = new List<bool>();
        var counts = new List<int>();
        for (var t = 1; t <= 21; t++)
        {
            At(t);
            outs.Add(_pit.Out(0));
            counts.Add(_pit.Count(0));
        }
        Assert.Equal([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 10], counts);
        Assert.Equal(Enumerable.Range(1, 21).Select(t => (t - 1) % 10 != 9), outs);
    }

    [Fact]
    public void Mode2InterruptsComeAtExactAbsoluteTicks()
    {
        Control(0x34);
        Count16(0, 1193);                    // about 1 kHz
        for (var k = 1; k <= 1000; k++)
        {
            var deadline = _pit.NextDeadline();
            Assert.Equal(_pit.TimestampOfTick(1 + 1193L * k), deadline); // computed from tick 1, never from the last expiry
            _clock.Advance(TimeSpan.FromTicks(deadline!.Value - _clock.GetTimestamp()));
            _pit.OnTimer();
        }
        Assert.Equal(1000, _irq.Pulses);
        Assert.Equal(0, _pit.CoalescedIrq0Edges);
    }

    [Fact]
    public void LateTimerDeliversOnePulseAndCountsTheEdgesItCoalesced()
    {
        Control(0x34);
        Count16(0, 100);
        At(1 + 100 * 5 + 50);                // five periods pass unobserved
        _pit.OnTimer();
        Assert.Equal(1, _irq.Pulses);
        Assert.Equal(4, _pit.CoalescedIrq0Edges);
        Assert.Equal(_pit.TimestampOfTick(601), _pit.NextDeadline());
    }

    [Fact]
    public void Mode2NewCountTakesEffectAtTheEndOfThePeriod()
    {
        Control(0x34);
        Count16(0, 10);
        At(5);
        Count16(0, 4);
        Assert.Equal(0x40, Status(0) & 0x40); // null count until the reload
        At(10);
        Assert.Equal(1, _pit.Count(0));        // the old period runs out
        At(11);
        Assert.Equal(4, _pit.Count(0));
        Assert.Equal(0, Status(0) & 0x40);
        At(14);
        Assert.False(_pit.Out(0));
        At(15);
        Assert.Equal(4, _pit.Count(0));
    }

    [Theory]
    [InlineData(10, new[] { 10, 8, 6, 4, 2, 10, 8, 6, 4, 2 }, new[] { true, true, true, true, true, false, false, false, false, false })]
    [InlineData(5, new[] { 5, 4, 2, 5, 2 }, new[] { true, true, true, false, false })]
    public void Mode3SquareWaveCountsByTwoAndSplitsOddCountsHighLonger(int n, int[] counts, bool[] outs)
    {
        Control(0x36);                       // counter 0, LSB/MSB, mode 3
        Count16(0, n);
        for (var t = 0; t < n; t++)
        {
            At(1 + t);
            Assert.Equal(counts[t], _pit.Count(0));
            Assert.Equal(outs[t], _pit.Out(0));
        }
        At(1 + n);
        Assert.True(_pit.Out(0));            // the next period starts high: a rising edge, IRQ 0
        Assert.Equal(_pit.TimestampOfTick(1 + n), _pit.NextDeadline());
        _pit.OnTimer();
        Assert.Equal(1, _irq.Pulses);
        Assert.Equal(_pit.TimestampOfTick(1 + 2 * n), _pit.NextDeadline());
    }

    [Fact]
    public void Mode4StrobeIsLowForOneTickWhenTheCountExpires()
    {
        Control(0x38);                       // counter 0, LSB/MSB, mode 4
        Assert.True(_pit.Out(0));
        Count16(0, 5);
        At(5);
        Assert.Equal(1, _pit.Count(0));
        Assert.True(_pit.Out(0));
        At(6);
        Assert.False(_pit.Out(0));
        Assert.Equal(0, _pit.Count(0));
        Assert.Equal(_pit.TimestampOfTick(7), _pit.NextDeadline());
        At(7);
        Assert.True(_pit.Out(0));
        _pit.OnTimer();
        Assert.Equal(1, _irq.Pulses);
        Assert.Null(_pit.NextDeadline());    // one strobe per count written
    }

    [Fact]
    public void Mode1OneShotOnCounter2StartsOnTheGateAndIsRetriggerable()
    {
        Control(0xB2);                       // counter 2, LSB/MSB, mode 1
        Count16(2, 5);
        At(10);
        Assert.Equal(0x20, _pit.ReadPortB() & 0x20); // OUT2 high, waiting for a trigger
        Assert.Equal(0x40, Status(2) & 0x40);        // the count is not loaded yet
        _pit.WritePortB(0x01);               // gate 2 rises
        At(11);
        Assert.Equal(0, _pit.ReadPortB() & 0x20);    // OUT low from the pulse after the trigger
        Assert.Equal(5, _pit.Count(2));
        At(14);
        _pit.WritePortB(0x00);
        _pit.WritePortB(0x01);               // retrigger: the count starts over
        At(19);
        Assert.Equal(0, _pit.ReadPortB() & 0x20);
        At(20);
        Assert.Equal(0x20, _pit.ReadPortB() & 0x20);
    }

    [Fact]
    public void Mode5HardwareStrobeOnCounter2()
    {
        Control(0xBA);                       // counter 2, LSB/MSB, mode 5
        Count16(2, 3);
        At(5);
        _pit.WritePortB(0x01);
        At(6 + 2);
        Assert.True(_pit.Out(2));
        At(6 + 3);
        Assert.False(_pit.Out(2));
        At(6 + 4);
        Assert.True(_pit.Out(2));
    }

    [Fact]
    public void Counter2GateLowHoldsMode2AndOutHighThenReloadsOnRise()
    {
        _pit.WritePortB(0x01);
        Control(0xB4);                       // counter 2, mode 2
        Count16(2, 10);
        At(4);
        Assert.Equal(7, _pit.Count(2));
        _pit.WritePortB(0x00);               // gate low: counting stops, OUT high
        At(30);
        Assert.Equal(7, _pit.Count(2));
        Assert.True(_pit.Out(2));
        _pit.WritePortB(0x01);               // gate rises: reload on the next pulse
        At(31);
        Assert.Equal(10, _pit.Count(2));
        At(40);
        Assert.False(_pit.Out(2));
    }

    [Fact]
    public void Counter2GateLowPausesMode0()
    {
        _pit.WritePortB(0x01);
        Control(0xB0);                       // counter 2, mode 0
        Count16(2, 10);
        At(5);                               // t = 4: count 6
        _pit.WritePortB(0x00);
        At(50);
        Assert.Equal(6, _pit.Count(2));
        Assert.Equal(0, _pit.ReadPortB() & 0x20);
        _pit.WritePortB(0x01);
        At(55);
        Assert.Equal(1, _pit.Count(2));
        At(56);
        Assert.Equal(0x20, _pit.ReadPortB() & 0x20); // terminal count, 45 ticks late
    }

    [Fact]
    public void CounterLatchHoldsTheCountUntilRead()
    {
        Control(0x34);
        Count16(0, 1000);
        At(101);
        Control(0x00);                       // latch counter 0
        At(500);
        Control(0x00);                       // a second latch before reading is ignored
        Assert.Equal(900, Read16(0));
        Assert.Equal(501, Read16(0));        // then the live count again
    }

    [Fact]
    public void ReadBackLatchesStatusAndCountOfSeveralCountersStatusFirst()
    {
        Control(0x34);
        Count16(0, 1000);
        Control(0xB0);                       // counter 2, mode 0 (gate low)
        Count16(2, 300);
        At(201);
        Control(0xC0 | 0x02 | 0x08);         // read-back: count and status of counters 0 and 2
        At(400);
        Assert.Equal(0x80 | 0x34, _pit.Read(0)); // OUT high, LSB/MSB, mode 2, binary, count loaded
        Assert.Equal(800, Read16(0));
        Assert.Equal(0x30, _pit.Read(2));    // OUT low, mode 0; loaded (null count clear) though the gate holds it
        Assert.Equal(300, Read16(2));
    }

    [Fact]
    public void AccessModesLsbOnlyAndMsbOnly()
    {
        Control(0x10);                       // counter 0, LSB only, mode 0
        _pit.Write(0, 0x20);
        At(1);
        Assert.Equal(0x20, _pit.Read(0));
        Assert.Equal(0x20, _pit.Read(0));    // every read is the LSB
        Control(0x20);                       // MSB only
        _pit.Write(0, 0x20);
        At(2);
        Assert.Equal(0x20, _pit.Read(0));    // 0x2000
        At(3);
        Assert.Equal(0x1F, _pit.Read(0));    // 0x1FFF
    }

    [Fact]
    public void BcdCountingReadsDecimalDigits()
    {
        Control(0x31);                       // counter 0, LSB/MSB, mode 0, BCD
        Count16(0, 0x1000);                  // 1000 decimal
        At(2);
        Assert.Equal(0x0999, Read16(0));
        At(1001);
        Assert.Equal(0x0000, Read16(0));
        At(1002);
        Assert.Equal(0x9999, Read16(0));     // BCD wraps at 10000
        Assert.Equal(0x31, Status(0) & 0x3F);
    }

    [Fact]
    public void BcdZeroMeansTenThousand()
    {
        Control(0x35);                       // mode 2, BCD
        Count16(0, 0);
        Assert.Equal(_pit.TimestampOfTick(10001), _pit.NextDeadline());
    }

    [Fact]
    public void PortBRefreshBitTogglesEvery18TicksAndGateAndSpeakerBitsReadBack()
    {
        _pit.WritePortB(0x03);
        Assert.Equal(0x03, _pit.ReadPortB() & 0x0F);
        Assert.True(_pit.SpeakerEnabled);
        var toggles = new List<bool>();
        for (var t = 0; t < 72; t += 9)
        {
            At(t);
            toggles.Add((_pit.ReadPortB() & 0x10) != 0);
        }
        Assert.Equal([false, false, true, true, false, false, true, true], toggles);
    }

    [Fact]
    public void MinimumIntervalCoalescesTinyPeriods()
    {
        var pit = new Actorvisor.Actors.Devices.Pit.Pit(_clock, _irq, TimeSpan.FromMicroseconds(50));
        pit.Write(3, 0x34);
        pit.Write(0, 2);                     // a 1.7 µs period
        pit.Write(0, 0);
        var start = _clock.GetTimestamp();
        for (var i = 0; i < 10; i++)
        {
            var d = pit.NextDeadline()!.Value;
            _clock.Advance(TimeSpan.FromTicks(d - _clock.GetTimestamp()));
            pit.OnTimer();
        }
        Assert.Equal(10, _irq.Pulses);
        Assert.True(_clock.GetTimestamp() - start >= 9 * TimeSpan.FromMicroseconds(50).Ticks);
        Assert.True(pit.CoalescedIrq0Edges > 200);
    }
}
