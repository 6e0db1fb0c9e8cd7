using Actorvisor.Kernel.Time;
using static Actorvisor.Actors.Devices.AcpiPm.AcpiPmRegisters;

namespace Actorvisor.Actors.Devices.AcpiPm;

/// <summary>What a write to the PM block asks of the machine.</summary>
public enum AcpiPmEffect { None, PowerOff }

/// <summary>
/// The ACPI fixed-hardware PM block (ACPI 6.3, 4.8.3): PM1a status/enable, PM1a control and the PM timer.
/// A plain model: the timer is computed from the clock when read, never ticked; the SCI is a level,
/// high while any status bit and its enable are both set (4.8.3.1), driven through <see cref="IIrqLine"/>.
/// Writing SLP_EN with the S5 SLP_TYP returns <see cref="AcpiPmEffect.PowerOff"/>; other sleep types are
/// not named in the DSDT and do nothing. TMR_STS is modelled: it is set when bit 23 of the counter has
/// changed since the last look, and <see cref="NextDeadline"/> tells the owner when the next change is due
/// while TMR_EN is set, so the timer's SCI arrives without polling.
/// </summary>
public sealed class AcpiPm
{
    private readonly TimeProvider _clock;
    private readonly IIrqLine _sci;
    private readonly byte _s5SleepType;
    private readonly long _origin;
    private ushort _status, _enable, _control;
    private long _carryIndex;
    private bool _line;

    public AcpiPm(TimeProvider clock, IIrqLine? sci = null, byte s5SleepType = S5SleepType)
    {
        _clock = clock;
        _sci = sci ?? NoIrqLine.Instance;
        _s5SleepType = s5SleepType;
        _origin = clock.GetTimestamp();
    }

    public ushort Status { get { Evaluate(); return _status; } }
    public ushort Enable => _enable;
    public ushort Control => (ushort)(_control | SciEn);
    public bool SciLevel => _line;
    public long SciAssertions { get; private set; }

    /// <summary>Whole PM timer ticks since power-on (not wrapped).</summary>
    private long Ticks => TimeStamps.TicksBetween(_clock, _origin, _clock.GetTimestamp(), TimerHz);

    /// <summary>The 24-bit PM timer value now.</summary>
    public uint Timer => (uint)(Ticks & TimerMask);

    // ---- port accesses (offset inside the block) ----

    public uint Read(int offset, int size)
    {
        Span<byte> block = stackalloc byte[ImplementedBytes];
        Snapshot(block);
        uint value = 0;
        for (var i = 0; i < size; i++)
        {
            var o = offset + i;
            if (o is >= 0 and < ImplementedBytes) value |= (uint)block[o] << (8 * i);
        }
        return value;
    }

    /// <summary>All registers at one instant, so a multi-byte timer read is not torn.</summary>
    private void Snapshot(Span<byte> block)
    {
        Evaluate();
        Put16(block, Pm1StatusOffset, _status);
        Put16(block, Pm1EnableOffset, _enable);
        Put16(block, Pm1ControlOffset, Control); // SLP_EN and GBL_RLS are write-only: never stored
        var t = Timer;
        for (var i = 0; i < 4; i++) block[PmTimerOffset + i] = (byte)(t >> (8 * i));
        static void Put16(Span<byte> b, int at, ushort v) { b[at] = (byte)v; b[at + 1] = (byte)(v >> 8); }
    }

    public AcpiPmEffect Write(int offset, int size, uint value)
    {
        var effect = AcpiPmEffect.None;
        for (var i = 0; i < size; i++)
            if (WriteByte(offset + i, (byte)(value >> (8 * i))) == AcpiPmEffect.PowerOff) effect = AcpiPmEffect.PowerOff;
        DriveSci();
        return effect;
    }

    private AcpiPmEffect WriteByte(int offset, byte b)
    {
        switch (offset)
        {
            case Pm1StatusOffset or Pm1StatusOffset + 1:
                Evaluate(); // a carry that already happened is cleared by this write too, as on hardware
                _status &= (ushort)~(b << (8 * (offset - Pm1StatusOffset))); // write 1 to clear
                break;
            case Pm1EnableOffset or Pm1EnableOffset + 1:
                var shift = 8 * (offset - Pm1EnableOffset);
                _enable = (ushort)((_enable & ~(0xFF << shift)) | (b << shift & EnableWritable));
                break;
            case Pm1ControlOffset or Pm1ControlOffset + 1:
                var cs = 8 * (offset - Pm1ControlOffset);
                var written = (ushort)(b << cs);
                _control = (ushort)((_control & ~(0xFF << cs & ControlStored)) | (written & ControlStored));
                if ((written & SlpEn) != 0 && SleepType == _s5SleepType) return AcpiPmEffect.PowerOff;
                break;
            // The timer is read-only; the rest of the block is unimplemented.
        }
        return AcpiPmEffect.None;
    }

    public int SleepType => (_control & SlpTypMask) >> SlpTypShift;

    // ---- inputs ----

    /// <summary>The power button was pressed (the host asks the guest to shut down): PWRBTN_STS, and the SCI if PWRBTN_EN.</summary>
    public void PressPowerButton()
    {
        _status |= PwrBtnSts;
        DriveSci();
    }

    /// <summary>The next time TMR_STS would be set, as a timestamp of the clock, while TMR_EN is set and TMR_STS clear; else null.</summary>
    public long? NextDeadline()
    {
        Evaluate();
        if ((_enable & TmrEn) == 0 || (_status & TmrSts) != 0) return null;
        return TimeStamps.AfterTicks(_clock, _origin, (_carryIndex + 1) << TimerCarryBit, TimerHz);
    }

    public void OnTimer()
    {
        Evaluate();
        DriveSci();
    }

    /// <summary>Platform reset: enables, status and the sleep type clear; the timer keeps counting.</summary>
    public void Reset()
    {
        Evaluate();
        (_status, _enable, _control) = (0, 0, 0);
        DriveSci();
    }

    public AcpiPmState Save() => new(Status, _enable, _control);

    public void Restore(AcpiPmState s)
    {
        Evaluate();
        _status = s.Status;
        _enable = (ushort)(s.Enable & EnableWritable);
        _control = (ushort)(s.Control & ControlStored);
        DriveSci();
    }

    /// <summary>Sets TMR_STS if bit 23 of the counter changed since the last evaluation.</summary>
    private void Evaluate()
    {
        var index = Ticks >> TimerCarryBit;
        if (index == _carryIndex) return;
        _carryIndex = index;
        _status |= TmrSts;
        DriveSci();
    }

    private void DriveSci()
    {
        var level = (_status & _enable & SciSources) != 0;
        if (level == _line) return;
        _line = level;
        if (level) SciAssertions++;
        _sci.Set(level);
    }
}
