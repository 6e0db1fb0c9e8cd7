using static Actorvisor.Actors.Devices.Rtc.RtcRegisters;

namespace Actorvisor.Actors.Devices.Rtc;

/// <summary>
/// The MC146818A RTC and its CMOS RAM. A plain model: the guest's time is the clock's UTC time plus an
/// offset the guest sets (through the SET bit or by writing a time register), computed when read, never a
/// ticking copy. The flags of register C are evaluated lazily for the time elapsed since the last look:
/// PF at each edge of the periodic rate (register A RS), UF at each second boundary (the update cycle,
/// unless SET halts it), AF at a second boundary whose time matches the alarm (bytes 0xC0-0xFF match any
/// value). IRQF (and IRQ 8, through <see cref="IIrqLine"/>) rises when a flag and its enable are both set;
/// reading register C clears the flags and lowers the line. The owner arms a timer for
/// <see cref="NextDeadline"/> and calls <see cref="OnTimer"/> so interrupts come without polling.
/// UIP is set for the 244 µs before each second boundary. Divider bits 11x in register A hold the divider chain
/// in reset: the time stops at its whole second (no updates, no periodic edges) and the first update comes
/// half a second after the guest writes an operating divider back (datasheet, "Divider Control"), as Linux's
/// mc146818_set_time relies on; the other divider values are stored only (the time base always runs).
/// </summary>
public sealed class Rtc
{
    private readonly TimeProvider _clock;
    private readonly IIrqLine _irq;
    private readonly byte[] _ram = new byte[BankSize];
    private readonly byte[] _extended = new byte[BankSize];
    private TimeSpan _offset;
    private int _dayOfWeekAdjust;
    private byte _index, _extendedIndex;
    private byte _a = PowerOnA, _b = PowerOnB, _c;
    private bool _line;
    /// <summary>While SET is 1: the time registers as the guest wrote them (index 0x0A holds the century).</summary>
    private readonly byte[] _setRegisters = new byte[11];
    private long _evaluatedTicks;
    /// <summary>While the divider chain is held in reset: the guest's time, stopped at a whole second.</summary>
    private long? _heldTicks;

    public Rtc(TimeProvider clock, IIrqLine? irq8 = null)
    {
        _clock = clock;
        _irq = irq8 ?? NoIrqLine.Instance;
        _evaluatedTicks = GuestTicks;
    }

    public bool NmiDisabled { get; private set; }
    public bool IrqLevel => _line;
    public long Interrupts { get; private set; }

    /// <summary>The guest's idea of UTC now.</summary>
    public DateTime GuestTime => new(GuestTicks, DateTimeKind.Utc);

    private long GuestTicks => _heldTicks ?? RunningTicks;

    private long RunningTicks => Math.Clamp(_clock.GetUtcNow().UtcDateTime.Ticks + _offset.Ticks, DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks);

    private bool Binary => (_b & BBinary) != 0;
    private bool Hours24 => (_b & B24Hour) != 0;
    private bool Setting => (_b & BSet) != 0;

    // ---- ports 0x70-0x73 ----

    public byte Read(int offset) => offset switch
    {
        DataPort => ReadRegister(_index),
        ExtendedDataPort => _extended[_extendedIndex],
        _ => 0xFF, // the index ports are write-only
    };

    public void Write(int offset, byte value)
    {
        switch (offset)
        {
            case IndexPort:
                _index = (byte)(value & IndexMask);
                NmiDisabled = (value & NmiDisable) != 0;
                break;
            case DataPort:
                WriteRegister(_index, value);
                break;
            case ExtendedIndexPort:
                _extendedIndex = (byte)(value & IndexMask);
                break;
            case ExtendedDataPort:
                _extended[_extendedIndex] = value;
                break;
        }
    }

    public byte ReadRegister(int index)
    {
        switch (index)
        {
            case <= Year:
                if (index is SecondsAlarm or MinutesAlarm or HoursAlarm) return _ram[index];
                return Setting ? _setRegisters[index] : EncodeTime(GuestTime)[index];
            case RegisterA:
                var a = (byte)(_a & ~AUpdateInProgress);
                if (UpdateInProgress()) a |= AUpdateInProgress;
                return a;
            case RegisterB:
                return _b;
            case RegisterC:
                Evaluate();
                var c = _c;
                _c = 0;
                DriveLine();
                return c;
            case RegisterD:
                return DValidRamAndTime;
            case Century:
                return Setting ? _setRegisters[RegisterA] : EncodeField(GuestTime.Year / 100);
            default:
                return _ram[index];
        }
    }

    public void WriteRegister(int index, byte value)
    {
        switch (index)
        {
            case SecondsAlarm or MinutesAlarm or HoursAlarm:
                _ram[index] = value;
                break;
            case <= Year:
                if (Setting) _setRegisters[index] = value;
                else
                {
                    // A write without SET changes that field of the running time; the next update counts on from it.
                    var regs = EncodeTime(GuestTime);
                    regs[index] = value;
                    SetGuestTime(regs, keepFraction: true);
                }
                break;
            case RegisterA:
                Evaluate();
                var wasHeld = _heldTicks is not null;
                _a = (byte)(value & ~AUpdateInProgress);
                if (DividerHeld(_a) && !wasHeld)
                    _heldTicks = GuestTicks / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond;
                else if (!DividerHeld(_a) && _heldTicks is { } held)
                {
                    // The held second reads on for half a second, then the first update counts on from it.
                    _heldTicks = null;
                    _offset = TimeSpan.FromTicks(held + TimeSpan.TicksPerSecond / 2 - _clock.GetUtcNow().UtcDateTime.Ticks);
                    _evaluatedTicks = GuestTicks;
                }
                break;
            case RegisterB:
                Evaluate();
                var wasSetting = Setting;
                _b = value;
                if (Setting && !wasSetting)
                {
                    EncodeTime(GuestTime).CopyTo(_setRegisters, 0);
                    _b &= unchecked((byte)~BUpdateEndedInterruptEnable); // SET clears UIE (datasheet)
                }
                else if (!Setting && wasSetting) SetGuestTime(_setRegisters, keepFraction: false);
                DriveLine();
                break;
            case RegisterC or RegisterD:
                break; // read-only
            case Century:
                if (Setting) _setRegisters[RegisterA] = value;
                else
                {
                    var regs = EncodeTime(GuestTime);
                    regs[RegisterA] = value;
                    SetGuestTime(regs, keepFraction: true);
                }
                break;
            default:
                _ram[index] = value;
                break;
        }
    }

    // ---- the extended bank and the BIOS's bytes (host side) ----

    public byte ReadExtended(int index) => _extended[index & IndexMask];

    /// <summary>
    /// The memory-size bytes a BIOS reads, as QEMU writes them for SeaBIOS: 640 KiB base memory; KiB above
    /// 1 MiB (at most 65535) twice; 64 KiB units above 16 MiB below 4 GiB (at most 65535); 64 KiB units
    /// above 4 GiB in three bytes; the number of CPUs minus one.
    /// </summary>
    public void SetMemorySize(ulong ramBelow4G, ulong ramAbove4G, int cpus = 1)
    {
        Put16(BaseMemoryLow, 640);
        var extendedKiB = ramBelow4G > 1UL << 20 ? Math.Min(65535UL, (ramBelow4G >> 10) - 1024) : 0;
        Put16(ExtendedMemoryLow, (ushort)extendedKiB);
        Put16(ExtendedMemoryLow2, (ushort)extendedKiB);
        var above16M = ramBelow4G > 16UL << 20 ? Math.Min(65535UL, (ramBelow4G - (16UL << 20)) >> 16) : 0;
        Put16(MemoryAbove16MLow, (ushort)above16M);
        var above4G = ramAbove4G >> 16;
        _ram[MemoryAbove4G] = (byte)above4G;
        _ram[MemoryAbove4G + 1] = (byte)(above4G >> 8);
        _ram[MemoryAbove4G + 2] = (byte)(above4G >> 16);
        _ram[CpuCountMinusOne] = (byte)(cpus - 1);
    }

    private void Put16(int index, ushort value)
    {
        _ram[index] = (byte)value;
        _ram[index + 1] = (byte)(value >> 8);
    }

    /// <summary>
    /// The host sets the clock (a control client's rtc-time set, bhyve's vm_rtc_settime): the guest's time is
    /// <paramref name="utc"/> from now on and counts on from it. Like a guest's own time change, the jump is
    /// not an update cycle and raises no flags.
    /// </summary>
    public void SetTimeFromHost(DateTime utc)
    {
        Evaluate();
        if (_heldTicks is not null) _heldTicks = utc.Ticks / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond;
        else _offset = utc - _clock.GetUtcNow().UtcDateTime;
        _evaluatedTicks = GuestTicks;
    }

    /// <summary>
    /// Whether <paramref name="offset"/> is a NVRAM byte the host may read or write (bhyve's rtc-nvram): bank 0
    /// from 0x0E to 0x7F except the century byte, which belongs to the clock, and the whole extended bank at
    /// 0x80-0xFF. The time and control registers are refused (rtc-time is their interface).
    /// </summary>
    public static bool IsNvramOffset(int offset) =>
        offset is >= FirstRamByte and < 2 * BankSize && offset != Century;

    public byte ReadNvram(int offset) =>
        IsNvramOffset(offset) ? (offset < BankSize ? _ram[offset] : _extended[offset - BankSize])
            : throw new ArgumentOutOfRangeException(nameof(offset), $"0x{offset:x2} is not an NVRAM offset");

    public void WriteNvram(int offset, byte value)
    {
        if (!IsNvramOffset(offset)) throw new ArgumentOutOfRangeException(nameof(offset), $"0x{offset:x2} is not an NVRAM offset");
        if (offset < BankSize) _ram[offset] = value;
        else _extended[offset - BankSize] = value;
    }

    // ---- time encoding ----

    private byte EncodeField(int value) => Binary ? (byte)value : (byte)(value / 10 << 4 | value % 10);

    private int DecodeField(byte value) => Binary ? value : (value >> 4) * 10 + (value & 0xF);

    /// <summary>The ten time registers for <paramref name="t"/> in the current encoding; index 0x0A carries the century.</summary>
    private byte[] EncodeTime(DateTime t)
    {
        var r = new byte[11];
        r[Seconds] = EncodeField(t.Second);
        r[Minutes] = EncodeField(t.Minute);
        if (Hours24) r[Hours] = EncodeField(t.Hour);
        else r[Hours] = (byte)(EncodeField(t.Hour % 12 == 0 ? 12 : t.Hour % 12) | (t.Hour >= 12 ? HourPm : 0));
        r[RtcRegisters.DayOfWeek] = EncodeField(((int)t.DayOfWeek + _dayOfWeekAdjust) % 7 + 1); // 1 = Sunday
        r[DayOfMonth] = EncodeField(t.Day);
        r[Month] = EncodeField(t.Month);
        r[Year] = EncodeField(t.Year % 100);
        r[RegisterA] = EncodeField(t.Year / 100);
        r[SecondsAlarm] = _ram[SecondsAlarm];
        r[MinutesAlarm] = _ram[MinutesAlarm];
        r[HoursAlarm] = _ram[HoursAlarm];
        return r;
    }

    private int DecodeHours(byte value)
    {
        if (Hours24) return DecodeField(value);
        var h12 = DecodeField((byte)(value & ~HourPm));
        return h12 % 12 + ((value & HourPm) != 0 ? 12 : 0);
    }

    /// <summary>
    /// Sets the guest's time from register values (out-of-range fields are clamped: the chip would count
    /// on from nonsense, which no guest relies on). Without <paramref name="keepFraction"/> the new second
    /// starts now, as when the guest clears SET.
    /// </summary>
    private void SetGuestTime(byte[] r, bool keepFraction)
    {
        var now = _clock.GetUtcNow().UtcDateTime;
        var current = GuestTicks;
        var year = Math.Clamp(DecodeField(r[RegisterA]) * 100 + DecodeField(r[Year]), 1, 9999);
        var month = Math.Clamp(DecodeField(r[Month]), 1, 12);
        var day = Math.Clamp(DecodeField(r[DayOfMonth]), 1, DateTime.DaysInMonth(year, month));
        var t = new DateTime(year, month, day, Math.Clamp(DecodeHours(r[Hours]), 0, 23),
            Math.Clamp(DecodeField(r[Minutes]), 0, 59), Math.Clamp(DecodeField(r[Seconds]), 0, 59), DateTimeKind.Utc);
        if (keepFraction) t = t.AddTicks(current % TimeSpan.TicksPerSecond);
        _dayOfWeekAdjust = 0;
        var writtenDow = DecodeField(r[RtcRegisters.DayOfWeek]) - 1;
        if (writtenDow is >= 0 and < 7) _dayOfWeekAdjust = ((writtenDow - (int)t.DayOfWeek) % 7 + 7) % 7;
        if (_heldTicks is not null) _heldTicks = t.Ticks; // it starts half a second after the divider runs again
        else _offset = t - now;
        _evaluatedTicks = GuestTicks; // a time change is not an update cycle: no flags for the jump
    }

    // ---- update cycle, flags, interrupt ----

    private static bool DividerHeld(byte a) => (a & ADividerReset) == ADividerReset;

    private bool UpdateInProgress()
    {
        if (Setting || _heldTicks is not null) return false;
        var toBoundary = TimeSpan.TicksPerSecond - GuestTicks % TimeSpan.TicksPerSecond;
        return toBoundary <= UpdateInProgressMicroseconds * 10;
    }

    /// <summary>The periodic interrupt's period in 32.768 kHz cycles, or 0 if RS selects none (datasheet Table 5).</summary>
    private long PeriodCycles => (_a & ARateMask) switch
    {
        0 => 0,
        1 => 128,
        2 => 256,
        var rs => 1L << (rs - 1),
    };

    private static long Cycles(long ticks) => (long)((Int128)ticks * TimeBaseHz / TimeSpan.TicksPerSecond);

    /// <summary>Sets PF, UF and AF for what happened since the last evaluation, then drives IRQF and the line.</summary>
    private void Evaluate()
    {
        var now = GuestTicks;
        var before = _evaluatedTicks;
        _evaluatedTicks = now;
        if (now <= before) return;
        var period = PeriodCycles;
        if (period != 0 && Cycles(now) / period > Cycles(before) / period) _c |= CPeriodic;
        if (!Setting)
        {
            var s0 = before / TimeSpan.TicksPerSecond;
            var s1 = now / TimeSpan.TicksPerSecond;
            if (s1 > s0)
            {
                _c |= CUpdateEnded;
                // The alarm fields repeat daily: looking at the last day's boundaries is enough.
                for (var s = Math.Max(s0 + 1, s1 - 86400); s <= s1; s++)
                    if (AlarmMatches(new DateTime(s * TimeSpan.TicksPerSecond, DateTimeKind.Utc))) { _c |= CAlarm; break; }
            }
        }
        DriveLine();
    }

    private bool AlarmMatches(DateTime t)
    {
        var r = EncodeTime(t);
        return Match(_ram[SecondsAlarm], r[Seconds]) && Match(_ram[MinutesAlarm], r[Minutes]) && Match(_ram[HoursAlarm], r[Hours]);
        static bool Match(byte alarm, byte value) => (alarm & AlarmDontCare) == AlarmDontCare || alarm == value;
    }

    private void DriveLine()
    {
        var enabled = (byte)((_b & BPeriodicInterruptEnable) != 0 ? CPeriodic : 0);
        if ((_b & BAlarmInterruptEnable) != 0) enabled |= CAlarm;
        if ((_b & BUpdateEndedInterruptEnable) != 0) enabled |= CUpdateEnded;
        if ((_c & enabled) != 0) _c |= CInterruptRequest;
        var level = (_c & CInterruptRequest) != 0;
        if (level == _line) return;
        _line = level;
        if (level) Interrupts++;
        _irq.Set(level);
    }

    /// <summary>
    /// The timestamp of the next event that would raise IRQF, or null: the next periodic edge when PIE is set,
    /// the next second boundary when UIE or AIE is. Nothing while IRQF is already set (the guest must read
    /// register C first, and later flags are found lazily then).
    /// </summary>
    public long? NextDeadline()
    {
        if ((_c & CInterruptRequest) != 0 || _heldTicks is not null) return null;
        var now = GuestTicks;
        long? next = null;
        var period = PeriodCycles;
        if ((_b & BPeriodicInterruptEnable) != 0 && period != 0)
        {
            var edge = (Cycles(now) / period + 1) * period;
            var ticks = (long)(((Int128)edge * TimeSpan.TicksPerSecond + TimeBaseHz - 1) / TimeBaseHz);
            next = ticks;
        }
        if ((_b & (BUpdateEndedInterruptEnable | BAlarmInterruptEnable)) != 0 && !Setting)
        {
            var boundary = (now / TimeSpan.TicksPerSecond + 1) * TimeSpan.TicksPerSecond;
            next = next is { } n ? Math.Min(n, boundary) : boundary;
        }
        if (next is not { } target) return null;
        var delta = target - now; // 100 ns units
        return _clock.GetTimestamp() + (long)(((Int128)delta * _clock.TimestampFrequency + TimeSpan.TicksPerSecond - 1) / TimeSpan.TicksPerSecond);
    }

    public void OnTimer() => Evaluate();

    /// <summary>
    /// The chip's RESET: PIE, AIE, UIE, SQWE and the flags of register C clear, the line drops. The time
    /// (the guest's offset), the RAM and both banks survive, as CMOS does across a PC's reset.
    /// </summary>
    public void Reset()
    {
        _b &= unchecked((byte)~(BPeriodicInterruptEnable | BAlarmInterruptEnable | BUpdateEndedInterruptEnable | BSquareWaveEnable));
        _c = 0;
        _evaluatedTicks = GuestTicks;
        DriveLine();
    }

    /// <summary>The guest's offset from the host clock (kept across reset; saved in snapshots).</summary>
    public TimeSpan Offset => _offset;

    /// <summary>What a battery keeps: the guest's time, registers A and B, and both banks (copies).</summary>
    public RtcCmosState SaveCmos()
    {
        // A held time is kept as the offset it has now; the restored chip holds it again from register A.
        var offset = _heldTicks is { } held ? TimeSpan.FromTicks(held - _clock.GetUtcNow().UtcDateTime.Ticks) : _offset;
        return new(offset, _dayOfWeekAdjust, _a, _b, (byte[])_ram.Clone(), (byte[])_extended.Clone());
    }

    /// <summary>
    /// Takes the battery-backed state of an earlier instance, as a PC powering back up finds it: the time runs
    /// on from the saved offset; register B comes back as after RESET (no interrupt enables) and without SET,
    /// since the frozen copy a SET in progress held is not part of the state (the clock keeps running).
    /// </summary>
    public void RestoreCmos(RtcCmosState state)
    {
        state.Bank0.AsSpan(0, Math.Min(BankSize, state.Bank0.Length)).CopyTo(_ram);
        state.Bank1.AsSpan(0, Math.Min(BankSize, state.Bank1.Length)).CopyTo(_extended);
        _offset = state.Offset;
        _dayOfWeekAdjust = ((state.DayOfWeekAdjust % 7) + 7) % 7;
        _a = (byte)(state.A & ~AUpdateInProgress);
        _heldTicks = DividerHeld(_a) ? RunningTicks / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond : null;
        _b = (byte)(state.B & ~(BSet | BPeriodicInterruptEnable | BAlarmInterruptEnable | BUpdateEndedInterruptEnable | BSquareWaveEnable));
        _c = 0;
        _evaluatedTicks = GuestTicks;
        DriveLine();
    }

    /// <summary>Every register as it stands between two accesses (copies), for <see cref="RestoreState"/>.</summary>
    public RtcState SaveState() => new(
        new(_offset, _dayOfWeekAdjust, _a, _b, (byte[])_ram.Clone(), (byte[])_extended.Clone()),
        _index, _extendedIndex, NmiDisabled, _c, _line, Interrupts, (byte[])_setRegisters.Clone(), _evaluatedTicks, _heldTicks);

    /// <summary>
    /// Takes a state <see cref="SaveState"/> made on the same clock: the chip carries on as if never stopped,
    /// flags that came due meanwhile are raised at the next evaluation. The line is driven to the restored
    /// level even when it seems unchanged: the wire belongs to a new actor and the old one may have left it otherwise.
    /// </summary>
    public void RestoreState(RtcState state)
    {
        state.Cmos.Bank0.AsSpan(0, Math.Min(BankSize, state.Cmos.Bank0.Length)).CopyTo(_ram);
        state.Cmos.Bank1.AsSpan(0, Math.Min(BankSize, state.Cmos.Bank1.Length)).CopyTo(_extended);
        _offset = state.Cmos.Offset;
        _dayOfWeekAdjust = ((state.Cmos.DayOfWeekAdjust % 7) + 7) % 7;
        _a = (byte)(state.Cmos.A & ~AUpdateInProgress);
        _b = state.Cmos.B;
        _index = (byte)(state.Index & IndexMask);
        _extendedIndex = (byte)(state.ExtendedIndex & IndexMask);
        NmiDisabled = state.NmiDisabled;
        _c = state.C;
        state.SetRegisters.AsSpan(0, Math.Min(_setRegisters.Length, state.SetRegisters.Length)).CopyTo(_setRegisters);
        _evaluatedTicks = state.EvaluatedTicks;
        _heldTicks = state.HeldTicks;
        Interrupts = state.Interrupts;
        _line = (_c & CInterruptRequest) != 0;
        _irq.Set(_line);
    }
}
