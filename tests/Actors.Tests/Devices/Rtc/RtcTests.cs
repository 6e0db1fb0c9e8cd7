using Actorvisor.Actors.Devices.Rtc;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Actors.Devices.Rtc.RtcRegisters;

namespace Actorvisor.Actors.Tests.Devices.Rtc;

/// <summary>The MC146818A by its datasheet, on a FakeTimeProvider; the CMOS bytes as QEMU/SeaBIOS lay them out.</summary>
public class RtcTests
{
    // Thursday 26 November 2026, 13:45:30.000 UTC.
    private static readonly DateTimeOffset Start = new(2026, 11, 26, 13, 45, 30, TimeSpan.Zero);
    private readonly FakeTimeProvider _clock = new(Start);
    private readonly RecordingIrqLine _irq = new();
    private readonly Actorvisor.Actors.Devices.Rtc.Rtc _rtc;

    public RtcTests() => _rtc = new Actorvisor.Actors.Devices.Rtc.Rtc(_clock, _irq);

    private byte Get(int index)
    {
        _rtc.Write(IndexPort, (byte)index);
        return _rtc.Read(DataPort);
    }

    private void Put(int index, byte value)
    {
        _rtc.Write(IndexPort, (byte)index);
        _rtc.Write(DataPort, value);
    }

    private void AdvanceTo(long timestamp) => _clock.Advance(TimeSpan.FromTicks(Math.Max(0, timestamp - _clock.GetTimestamp())));

    [Fact]
    public void PowerOnReadsTheHostTimeInBcd24Hour()
    {
        Assert.Equal(0x30, Get(Seconds));
        Assert.Equal(0x45, Get(Minutes));
        Assert.Equal(0x13, Get(Hours));
        Assert.Equal(0x05, Get(RtcRegisters.DayOfWeek));  // Thursday; Sunday is 1
        Assert.Equal(0x26, Get(DayOfMonth));
        Assert.Equal(0x11, Get(Month));
        Assert.Equal(0x26, Get(Year));
        Assert.Equal(0x20, Get(Century));
        Assert.Equal(PowerOnA, Get(RegisterA));
        Assert.Equal(PowerOnB, Get(RegisterB));
        Assert.Equal(DValidRamAndTime, Get(RegisterD));
    }

    [Fact]
    public void BinaryModeReadsPlainNumbers()
    {
        Put(RegisterB, B24Hour | BBinary);
        Assert.Equal(30, Get(Seconds));
        Assert.Equal(45, Get(Minutes));
        Assert.Equal(13, Get(Hours));
        Assert.Equal(26, Get(Year));
        Assert.Equal(20, Get(Century));
    }

    [Theory]
    [InlineData(13, 0x00, 0x81)]          // 1 PM, BCD: PM bit + 1
    [InlineData(13, BBinary, 0x81)]
    [InlineData(0, 0x00, 0x12)]           // midnight is 12 AM
    [InlineData(12, 0x00, 0x92)]          // noon is 12 PM
    [InlineData(23, BBinary, 0x80 | 11)]
    [InlineData(23, 0x00, 0x91)]          // 11 PM in BCD
    public void TwelveHourModeSetsThePmBit(int hour, byte mode, byte expected)
    {
        _clock.SetUtcNow(new DateTimeOffset(2026, 11, 27, hour, 5, 0, TimeSpan.Zero));
        Put(RegisterB, mode);
        Assert.Equal(expected, Get(Hours));
    }

    [Theory]
    [InlineData(0x12, 0)]                 // 12 AM is midnight
    [InlineData(0x92, 12)]                // 12 PM is noon
    [InlineData(0x81, 13)]
    [InlineData(0x11, 11)]
    public void TwelveHourBcdTimeWrittenUnderSetIsTheRightHourIn24HourMode(byte written, int hour)
    {
        Put(RegisterB, BSet);                // BCD, 12-hour, updates halted
        Put(Hours, written);
        Put(RegisterB, 0x00);
        Assert.Equal(hour, _rtc.GuestTime.Hour);
        Put(RegisterB, B24Hour);
        Assert.Equal((byte)(hour / 10 << 4 | hour % 10), Get(Hours));
    }

    [Fact]
    public void AlarmInTwelveHourModeMatchesThePmEncodedHour()
    {
        Put(RegisterB, 0x00);                // BCD, 12-hour: 13:45:30 reads 0x81
        Assert.Equal(0x81, Get(Hours));
        Put(SecondsAlarm, 0x32);
        Put(MinutesAlarm, 0x45);
        Put(HoursAlarm, 0x81);               // 1 PM
        Put(RegisterB, BAlarmInterruptEnable);
        var alarmAt = _clock.GetTimestamp() + 2 * TimeSpan.TicksPerSecond;
        AdvanceTo(_rtc.NextDeadline()!.Value);
        _rtc.OnTimer();
        Assert.False(_irq.Level);            // 13:45:31: not yet
        Assert.Equal(0, Get(RegisterC) & CAlarm);
        AdvanceTo(_rtc.NextDeadline()!.Value);
        _rtc.OnTimer();
        Assert.True(_irq.Level);
        Assert.Equal(alarmAt, _clock.GetTimestamp());
        Assert.Equal(CInterruptRequest | CAlarm | CUpdateEnded, Get(RegisterC) & ~CPeriodic);
        Assert.False(_irq.Level);            // reading C lowered IRQ 8
        Assert.Equal(0, Get(RegisterC));     // and cleared the flags
    }

    /// <summary>Linux's mc146818_set_time: SET, divider reset, the time, SET off, the old divider back.</summary>
    [Fact]
    public void DividerResetHoldsTheTimeAndTheFirstUpdateComesHalfASecondAfterRelease()
    {
        _clock.Advance(TimeSpan.FromMilliseconds(250));                // 13:45:30.25
        Get(RegisterC);                                                 // the periodic flag so far
        Put(RegisterB, BSet | B24Hour);
        Put(RegisterA, ADividerReset | 0x06);
        _clock.Advance(TimeSpan.FromSeconds(5));
        Put(Seconds, 0x10);
        Put(RegisterB, B24Hour | BUpdateEndedInterruptEnable);          // SET off: the divider still holds the time
        _clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0x10, Get(Seconds));
        Assert.Equal(ADividerReset | 0x06, Get(RegisterA));             // no UIP while held
        Assert.Null(_rtc.NextDeadline());                               // and no updates to wait for
        Assert.Equal(0, Get(RegisterC));                                // nor periodic edges

        Put(RegisterA, ADividerNormal | 0x06);
        var released = _clock.GetTimestamp();
        _clock.Advance(TimeSpan.FromMilliseconds(499));
        Assert.Equal(0x10, Get(Seconds));
        AdvanceTo(_rtc.NextDeadline()!.Value);
        _rtc.OnTimer();
        Assert.True(_irq.Level);
        Assert.Equal(TimeSpan.FromMilliseconds(500), _clock.GetElapsedTime(released, _clock.GetTimestamp()));
        Assert.Equal(0x11, Get(Seconds));
        Assert.Equal(0x45, Get(Minutes));
    }

    [Fact]
    public void SetBitHaltsUpdatesAndTheGuestTimeRunsFromWhenItClears()
    {
        Put(RegisterB, BSet | B24Hour);      // BCD, 24-hour, updates halted
        Put(Seconds, 0x58);
        Put(Minutes, 0x59);
        Put(Hours, 0x23);
        Put(DayOfMonth, 0x31);
        Put(Month, 0x12);
        Put(Year, 0x99);
        Put(Century, 0x19);
        _clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0x58, Get(Seconds));    // frozen while SET
        Assert.Equal(0, Get(RegisterA) & AUpdateInProgress);
        Put(RegisterB, B24Hour);             // clear SET: 1999-12-31 23:59:58.0 starts now
        _clock.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.Equal(0x59, Get(Seconds));
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(0x00, Get(Seconds));
        Assert.Equal(0x00, Get(Hours));
        Assert.Equal(0x01, Get(DayOfMonth));
        Assert.Equal(0x01, Get(Month));
        Assert.Equal(0x00, Get(Year));
        Assert.Equal(0x20, Get(Century));
        Assert.Equal(new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc), _rtc.GuestTime);
    }

    [Fact]
    public void SettingTheSetBitClearsUie()
    {
        Put(RegisterB, B24Hour | BUpdateEndedInterruptEnable);
        Put(RegisterB, B24Hour | BUpdateEndedInterruptEnable | BSet);
        Assert.Equal(B24Hour | BSet, Get(RegisterB));
    }

    [Fact]
    public void WritingATimeRegisterWithoutSetChangesTheRunningTime()
    {
        _clock.Advance(TimeSpan.FromMilliseconds(400));
        Put(Minutes, 0x10);
        Assert.Equal(0x10, Get(Minutes));
        Assert.Equal(0x30, Get(Seconds));
        _clock.Advance(TimeSpan.FromMilliseconds(600)); // the second's phase was kept
        Assert.Equal(0x31, Get(Seconds));
    }

    [Fact]
    public void UipIsSetFor244MicrosecondsBeforeEachSecondBoundary()
    {
        _clock.Advance(TimeSpan.FromTicks(TimeSpan.TicksPerSecond - 2450)); // 245 µs before
        Assert.Equal(0, Get(RegisterA) & AUpdateInProgress);
        _clock.Advance(TimeSpan.FromTicks(10));                            // 244 µs before
        Assert.Equal(AUpdateInProgress, Get(RegisterA) & AUpdateInProgress);
        Assert.Equal(0x30, Get(Seconds));
        _clock.Advance(TimeSpan.FromTicks(2440));                          // the boundary
        Assert.Equal(0, Get(RegisterA) & AUpdateInProgress);
        Assert.Equal(0x31, Get(Seconds));
    }

    [Fact]
    public void UpdateEndedInterruptAtTheSecondBoundaryAndRegisterCClearsOnRead()
    {
        Put(RegisterA, ADividerNormal);      // no periodic rate, so PF stays clear
        _clock.Advance(TimeSpan.FromMilliseconds(300));
        Put(RegisterB, B24Hour | BUpdateEndedInterruptEnable);
        var deadline = _rtc.NextDeadline();
        Assert.Equal(_clock.GetTimestamp() + TimeSpan.FromMilliseconds(700).Ticks, deadline);
        AdvanceTo(deadline!.Value - 1);
        _rtc.OnTimer();
        Assert.False(_irq.Level);
        AdvanceTo(deadline.Value);
        _rtc.OnTimer();
        Assert.True(_irq.Level);
        Assert.Null(_rtc.NextDeadline());    // nothing more until the guest reads C
        Assert.Equal(CInterruptRequest | CUpdateEnded, Get(RegisterC));
        Assert.False(_irq.Level);
        Assert.Equal(0, Get(RegisterC));
        Assert.Equal(_clock.GetTimestamp() + TimeSpan.TicksPerSecond, _rtc.NextDeadline());
    }

    [Fact]
    public void FlagsAreSetWithoutTheirEnablesButRaiseNoInterrupt()
    {
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(CPeriodic | CUpdateEnded, Get(RegisterC)); // 1024 Hz rate after power-on, PIE off
        Assert.Equal(0, _irq.Rises);
    }

    [Theory]
    [InlineData(0x26, 1024)]  // RS = 6: 976.5625 µs
    [InlineData(0x23, 8192)]  // RS = 3: 122.070 µs
    [InlineData(0x2F, 2)]     // RS = 15: 500 ms
    [InlineData(0x21, 256)]   // RS = 1: 3.90625 ms
    public void PeriodicInterruptComesAtTheRateInRegisterA(byte a, int hz)
    {
        Put(RegisterA, a);
        Put(RegisterB, B24Hour | BPeriodicInterruptEnable);
        Get(RegisterC);
        var end = _clock.GetTimestamp() + TimeSpan.TicksPerSecond;
        var interrupts = 0;
        while (_rtc.NextDeadline() is { } d && d <= end)
        {
            AdvanceTo(d);
            _rtc.OnTimer();
            Assert.True(_irq.Level);
            Assert.Equal(CInterruptRequest | CPeriodic, Get(RegisterC) & (CInterruptRequest | CPeriodic));
            interrupts++;
        }
        Assert.Equal(hz, interrupts);
    }

    [Fact]
    public void AlarmFiresWhenSecondsMinutesAndHoursMatch()
    {
        Put(RegisterA, ADividerNormal);
        Put(SecondsAlarm, 0x33);
        Put(MinutesAlarm, 0x45);
        Put(HoursAlarm, 0x13);
        Put(RegisterB, B24Hour | BAlarmInterruptEnable);
        var alarmAt = _clock.GetTimestamp() + 3 * TimeSpan.TicksPerSecond; // 13:45:33
        while (!_irq.Level)
        {
            var d = _rtc.NextDeadline()!.Value;
            AdvanceTo(d);
            _rtc.OnTimer();
        }
        Assert.Equal(alarmAt, _clock.GetTimestamp());
        Assert.Equal(CInterruptRequest | CAlarm | CUpdateEnded, Get(RegisterC));
    }

    [Fact]
    public void AlarmDontCareBytesMatchEveryValue()
    {
        Put(SecondsAlarm, 0x00);
        Put(MinutesAlarm, 0xC0);
        Put(HoursAlarm, 0xFF);
        Put(RegisterB, B24Hour | BAlarmInterruptEnable);
        _clock.Advance(TimeSpan.FromSeconds(29));  // 13:45:59
        Assert.Equal(0, Get(RegisterC) & CAlarm);
        _clock.Advance(TimeSpan.FromSeconds(1));   // 13:46:00: seconds match, the rest are don't-care
        Assert.Equal(CInterruptRequest | CAlarm | CUpdateEnded, Get(RegisterC) & 0xF0 & ~CPeriodic);
    }

    [Fact]
    public void NvramBothBanksAndTheTimeOffsetSurviveReset()
    {
        Put(0x40, 0xA5);
        Put(0x7F, 0x5A);
        _rtc.Write(ExtendedIndexPort, 0x10);
        _rtc.Write(ExtendedDataPort, 0x77);
        Put(Year, 0x30);                     // the guest moves its clock to 2030
        Put(RegisterB, B24Hour | BPeriodicInterruptEnable | BUpdateEndedInterruptEnable | BSquareWaveEnable);
        _clock.Advance(TimeSpan.FromSeconds(2));
        _rtc.OnTimer();
        Assert.True(_irq.Level);

        _rtc.Reset();
        Assert.False(_irq.Level);
        Assert.Equal(B24Hour, Get(RegisterB)); // PIE, AIE, UIE, SQWE cleared
        Assert.Equal(0, Get(RegisterC));
        Assert.Equal(0xA5, Get(0x40));
        Assert.Equal(0x5A, Get(0x7F));
        _rtc.Write(ExtendedIndexPort, 0x10);
        Assert.Equal(0x77, _rtc.Read(ExtendedDataPort));
        Assert.Equal(0x30, Get(Year));
        Assert.Equal(0x32, Get(Seconds));
    }

    [Fact]
    public void ANewChipRestoredFromTheSavedCmosKeepsTimeRamAndModeButNoInterruptEnables()
    {
        Put(0x40, 0xA5);
        _rtc.Write(ExtendedIndexPort, 0x7F);
        _rtc.Write(ExtendedDataPort, 0x3C);
        Put(RegisterB, B24Hour | BBinary | BUpdateEndedInterruptEnable);
        Put(Year, 31);                        // binary now: the guest moves its clock to 2031
        Put(RegisterA, 0x2F);                 // a 2 Hz periodic rate
        var saved = _rtc.SaveCmos();
        _clock.Advance(TimeSpan.FromSeconds(10)); // the VM is rebuilt meanwhile; the battery keeps the clock going

        var irq = new RecordingIrqLine();
        var next = new Actorvisor.Actors.Devices.Rtc.Rtc(_clock, irq);
        next.RestoreCmos(saved);
        byte Read(int index) { next.Write(IndexPort, (byte)index); return next.Read(DataPort); }
        Assert.Equal(0xA5, Read(0x40));
        next.Write(ExtendedIndexPort, 0x7F);
        Assert.Equal(0x3C, next.Read(ExtendedDataPort));
        Assert.Equal(B24Hour | BBinary, Read(RegisterB));      // the mode stays, UIE is gone as after RESET
        Assert.Equal(0x2F, Read(RegisterA));
        Assert.Equal(31, Read(Year));
        Assert.Equal(20, Read(Century));
        Assert.Equal(40, Read(Seconds));                       // 13:45:30 + 10 s, in binary
        Assert.Equal(new DateTime(2031, 11, 26, 13, 45, 40, DateTimeKind.Utc), next.GuestTime);
        Assert.Equal(0, Read(RegisterC));
        Assert.False(irq.Level);
    }

    [Fact]
    public void ASetInProgressIsDroppedOnRestoreAndTheClockRunsOn()
    {
        Put(RegisterB, BSet | B24Hour);
        var saved = _rtc.SaveCmos();
        var next = new Actorvisor.Actors.Devices.Rtc.Rtc(_clock);
        next.RestoreCmos(saved);
        next.Write(IndexPort, RegisterB);
        Assert.Equal(B24Hour, next.Read(DataPort));
        _clock.Advance(TimeSpan.FromSeconds(1));
        next.Write(IndexPort, Seconds);
        Assert.Equal(0x31, next.Read(DataPort));
    }

    [Fact]
    public void IndexPortBit7IsTheNmiMaskAndNotPartOfTheIndex()
    {
        _rtc.Write(IndexPort, NmiDisable | 0x40);
        _rtc.Write(DataPort, 0x12);
        Assert.True(_rtc.NmiDisabled);
        Assert.Equal(0x12, Get(0x40));
        Assert.False(_rtc.NmiDisabled);
        Assert.Equal(0xFF, _rtc.Read(IndexPort));
    }

    [Theory]
    [InlineData(256UL << 20, 0UL, 0xFFFF, 0x0F00, 0)]            // 256 MiB: extended capped, (256-16) MiB / 64 KiB
    [InlineData(32UL << 20, 0UL, 31 * 1024, 0x0100, 0)]           // 32 MiB: 31 MiB above 1 MiB
    [InlineData(3UL << 30, 2UL << 30, 0xFFFF, 0xBF00, 0x8000)]     // 5 GiB: 3 GiB below the hole, 2 GiB above 4 GiB
    public void MemorySizeBytesAsSeaBiosReadsThem(ulong below, ulong above, int extendedKiB, int above16M, int above4G)
    {
        _rtc.SetMemorySize(below, above, cpus: 2);
        Assert.Equal(640, Get(BaseMemoryLow) | Get(BaseMemoryHigh) << 8);
        Assert.Equal(extendedKiB, Get(ExtendedMemoryLow) | Get(ExtendedMemoryHigh) << 8);
        Assert.Equal(extendedKiB, Get(ExtendedMemoryLow2) | Get(ExtendedMemoryHigh2) << 8);
        Assert.Equal(above16M, Get(MemoryAbove16MLow) | Get(MemoryAbove16MHigh) << 8);
        Assert.Equal(above4G, Get(MemoryAbove4G) | Get(MemoryAbove4G + 1) << 8 | Get(MemoryAbove4G + 2) << 16);
        Assert.Equal(1, Get(CpuCountMinusOne));
    }
}
