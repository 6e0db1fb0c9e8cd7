using Actorvisor.Actors.Devices.AcpiPm;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Actors.Devices.AcpiPm.AcpiPmRegisters;

namespace Actorvisor.Actors.Tests.Devices.AcpiPm;

/// <summary>The ACPI PM1a event/control blocks and PM timer by ACPI 6.3, 4.8.3, on a FakeTimeProvider.</summary>
public class AcpiPmTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
    private readonly RecordingIrqLine _sci = new();
    private readonly Actorvisor.Actors.Devices.AcpiPm.AcpiPm _pm;

    public AcpiPmTests() => _pm = new Actorvisor.Actors.Devices.AcpiPm.AcpiPm(_clock, _sci);

    /// <summary>The clock's duration of <paramref name="ticks"/> PM timer ticks, rounded up to the clock's 100 ns unit.</summary>
    private static TimeSpan TicksOfPmTimer(long ticks) => TimeSpan.FromTicks((long)(((Int128)ticks * TimeSpan.TicksPerSecond + TimerHz - 1) / TimerHz));

    private uint ReadTimerPort() => _pm.Read(PmTimerOffset, 4);

    [Fact]
    public void TimerCounts3579545TicksPerSecond()
    {
        Assert.Equal(0u, ReadTimerPort());
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(3_579_545u, ReadTimerPort());
        _clock.Advance(TimeSpan.FromMicroseconds(1));                  // 3.58 ticks more
        Assert.Equal(3_579_548u, ReadTimerPort());
        _clock.Advance(TimeSpan.FromSeconds(4) - TimeSpan.FromMicroseconds(1));
        Assert.Equal((uint)(5 * 3_579_545L % (1 << 24)), ReadTimerPort()); // 5 s: past one wrap
    }

    [Fact]
    public void TimerIs24BitsAndWrapsToZero()
    {
        var toWrap = TicksOfPmTimer(1 << 24);
        _clock.Advance(toWrap - TimeSpan.FromTicks(1));
        Assert.Equal(0xFFFFFFu, ReadTimerPort());                        // the last value before the wrap; bits 24-31 read 0
        _clock.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(0u, ReadTimerPort());
        Assert.Equal(0u, _pm.Read(PmTimerOffset + 3, 1));               // the top byte of the port is always 0
    }

    [Fact]
    public void TimerIsReadOnly()
    {
        _clock.Advance(TimeSpan.FromSeconds(1));
        _pm.Write(PmTimerOffset, 4, 0);
        Assert.Equal(3_579_545u, ReadTimerPort());
    }

    [Fact]
    public void TmrStsSetsWhenBit23ChangesAndClearsByWritingOne()
    {
        _clock.Advance(TicksOfPmTimer(1 << 23) - TimeSpan.FromTicks(1));
        Assert.Equal(0u, _pm.Read(Pm1StatusOffset, 2) & TmrSts);
        _clock.Advance(TimeSpan.FromTicks(1));                          // bit 23 goes 0 → 1
        Assert.Equal(TmrSts, _pm.Read(Pm1StatusOffset, 2) & TmrSts);
        Assert.False(_sci.Level);                                       // TMR_EN clear: no SCI
        _pm.Write(Pm1StatusOffset, 2, TmrSts);
        Assert.Equal(0u, _pm.Read(Pm1StatusOffset, 2) & TmrSts);
        _clock.Advance(TicksOfPmTimer(1 << 23));                        // bit 23 goes 1 → 0 (the wrap)
        Assert.Equal(TmrSts, _pm.Read(Pm1StatusOffset, 2) & TmrSts);
    }

    [Fact]
    public void NextDeadlineIsTheNextCarryOnlyWhileTmrEnIsSet()
    {
        Assert.Null(_pm.NextDeadline());
        _pm.Write(Pm1EnableOffset, 2, TmrEn);
        var deadline = _pm.NextDeadline();
        Assert.Equal(_clock.GetTimestamp() + TicksOfPmTimer(1 << 23).Ticks, deadline);
        _clock.Advance(TicksOfPmTimer(1 << 23));
        _pm.OnTimer();
        Assert.True(_sci.Level);                                        // TMR_STS & TMR_EN
        Assert.Null(_pm.NextDeadline());                                // nothing more to arm until the guest clears it
    }

    [Fact]
    public void StatusBitsAreWriteOneToClear()
    {
        _pm.PressPowerButton();
        Assert.Equal(PwrBtnSts, _pm.Read(Pm1StatusOffset, 2));
        _pm.Write(Pm1StatusOffset, 2, 0);                               // writing 0 changes nothing
        Assert.Equal(PwrBtnSts, _pm.Read(Pm1StatusOffset, 2));
        _pm.Write(Pm1StatusOffset, 2, WakSts | TmrSts);                // 1s elsewhere set nothing and clear nothing else
        Assert.Equal(PwrBtnSts, _pm.Read(Pm1StatusOffset, 2));
        _pm.Write(Pm1StatusOffset + 1, 1, PwrBtnSts >> 8);              // a byte write to the high half
        Assert.Equal(0u, _pm.Read(Pm1StatusOffset, 2));
    }

    [Fact]
    public void SciLevelFollowsStatusAndEnable()
    {
        _pm.PressPowerButton();
        Assert.False(_sci.Level);                                       // PWRBTN_EN clear
        _pm.Write(Pm1EnableOffset, 2, PwrBtnEn);
        Assert.True(_sci.Level);
        _pm.Write(Pm1EnableOffset, 2, 0);
        Assert.False(_sci.Level);
        _pm.Write(Pm1EnableOffset, 2, PwrBtnEn);
        Assert.True(_sci.Level);
        _pm.Write(Pm1StatusOffset, 2, PwrBtnSts);                      // the guest's handler acknowledges
        Assert.False(_sci.Level);
        Assert.Equal(["high", "low", "high", "low"], _sci.Events);
        Assert.Equal(2, _pm.SciAssertions);
        // A 32-bit write at the block's start reaches status (low half) and enable (high half) together.
        _pm.PressPowerButton();
        _pm.Write(Pm1StatusOffset, 4, PwrBtnSts | (uint)RtcEn << 16);
        Assert.False(_sci.Level);
        Assert.Equal(RtcEn, _pm.Read(Pm1EnableOffset, 2));
    }

    [Fact]
    public void EnableKeepsOnlyDefinedBits()
    {
        _pm.Write(Pm1EnableOffset, 2, 0xFFFF);
        Assert.Equal(EnableWritable, (ushort)_pm.Read(Pm1EnableOffset, 2));
    }

    [Fact]
    public void ControlReadsSciEnAndStoresSlpTypButNeverSlpEn()
    {
        Assert.Equal(SciEn, _pm.Read(Pm1ControlOffset, 2));            // ACPI mode from power-on
        _pm.Write(Pm1ControlOffset, 2, 0);
        Assert.Equal(SciEn, _pm.Read(Pm1ControlOffset, 2));            // SCI_EN cannot be cleared: no legacy mode
        Assert.Equal(AcpiPmEffect.None, _pm.Write(Pm1ControlOffset, 2, 3u << SlpTypShift | GblRls));
        Assert.Equal(SciEn | 3 << SlpTypShift, (int)_pm.Read(Pm1ControlOffset, 2)); // GBL_RLS is write-only
        Assert.Equal(AcpiPmEffect.None, _pm.Write(Pm1ControlOffset, 2, 3u << SlpTypShift | SlpEn));
        Assert.Equal(0u, _pm.Read(Pm1ControlOffset, 2) & SlpEn);
    }

    [Fact]
    public void SlpEnWithTheS5TypePowersOffAndOtherTypesDoNot()
    {
        for (var type = 0u; type < 8; type++)
        {
            var effect = _pm.Write(Pm1ControlOffset, 2, type << SlpTypShift | SlpEn);
            Assert.Equal(type == S5SleepType ? AcpiPmEffect.PowerOff : AcpiPmEffect.None, effect);
        }
        // SLP_TYP written first, SLP_EN after (ACPICA's sequence), and a single byte write to the high byte.
        _pm.Write(Pm1ControlOffset, 2, (uint)S5SleepType << SlpTypShift);
        Assert.Equal(AcpiPmEffect.PowerOff, _pm.Write(Pm1ControlOffset, 2, (uint)S5SleepType << SlpTypShift | SlpEn));
        Assert.Equal(AcpiPmEffect.PowerOff, _pm.Write(Pm1ControlOffset + 1, 1, (uint)(S5SleepType << 2 | 1 << 5)));
        Assert.Equal(AcpiPmEffect.None, _pm.Write(Pm1ControlOffset + 1, 1, (uint)(S5SleepType << 2)));
    }

    [Fact]
    public void ResetClearsRegistersButTheTimerRunsOn()
    {
        _pm.Write(Pm1EnableOffset, 2, PwrBtnEn);
        _pm.PressPowerButton();
        _pm.Write(Pm1ControlOffset, 2, 5u << SlpTypShift);
        _clock.Advance(TimeSpan.FromSeconds(1));
        _pm.Reset();
        Assert.False(_sci.Level);
        Assert.Equal(AcpiPmState.PowerOn, _pm.Save());
        Assert.Equal(SciEn, _pm.Read(Pm1ControlOffset, 2));
        Assert.Equal(3_579_545u, ReadTimerPort());
    }

    [Fact]
    public void SaveRestoreKeepsRegistersAndRedrivesTheSci()
    {
        _pm.Write(Pm1EnableOffset, 2, PwrBtnEn);
        _pm.Write(Pm1ControlOffset, 2, 2u << SlpTypShift);
        _pm.PressPowerButton();
        var saved = _pm.Save();
        var line = new RecordingIrqLine();
        var copy = new Actorvisor.Actors.Devices.AcpiPm.AcpiPm(_clock, line);
        copy.Restore(saved);
        Assert.Equal(saved, copy.Save());
        Assert.True(line.Level);
    }

    [Fact]
    public void RegistersSitWhereTheFadtAndDsdtSayTheyAre()
    {
        var fadt = Actorvisor.Kernel.Boot.AcpiPmPorts.Piix4;
        Assert.Equal(fadt.Pm1aEvent, IoBase + Pm1StatusOffset);
        Assert.Equal(fadt.Pm1aControl, IoBase + Pm1ControlOffset);
        Assert.Equal(fadt.PmTimer, IoBase + PmTimerOffset);
        Assert.Equal(Actorvisor.Kernel.Boot.PlatformDescription.Standard(1).S5SleepType, S5SleepType);
    }

    [Fact]
    public void UnimplementedOffsetsReadZeroAndIgnoreWrites()
    {
        Assert.Equal(0u, _pm.Read(0x06, 2));
        Assert.Equal(0u, _pm.Read(0x20, 4));
        Assert.Equal(AcpiPmEffect.None, _pm.Write(0x20, 4, 0xFFFF_FFFF));
        Assert.Equal(AcpiPmState.PowerOn, _pm.Save());
    }
}
