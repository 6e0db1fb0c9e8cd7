using static Actorvisor.Actors.Devices.Pit.PitRegisters;

namespace Actorvisor.Actors.Devices.Pit;

/// <summary>
/// One 8254 counter. It is never ticked: its count and OUT are functions of the CLK tick number, computed
/// when asked, from the tick its counting element (CE) was loaded (<c>_loadTick</c>) and the count N.
/// "Tick" is the number of CLK pulses since the PIT's epoch.
/// Timing follows the datasheet: the count register is transferred to CE on the CLK pulse after the
/// count is written (so in mode 0 OUT rises N+1 pulses after the write); until then the status byte's
/// null-count bit is set.
/// </summary>
internal sealed class PitCounter
{
    private const long Never = long.MaxValue;

    public byte ModeBits { get; private set; }          // M2-M0 as written (6 and 7 are modes 2 and 3)
    public int Mode => ModeBits > 5 ? ModeBits - 4 : ModeBits;
    public Access AccessMode { get; private set; } = Access.LsbThenMsb;
    public bool BcdMode { get; private set; }
    public bool Gate { get; private set; }

    private int _count;            // N as last loaded (0 = the maximum)
    private bool _hasCount;        // a count was written since the control word
    private bool _counting;        // CE holds a count and runs (modes 2/3 stop with the gate)
    private long _loadTick;        // CE loaded on this tick: elapsed t = tick - _loadTick
    private long? _frozenElapsed;  // modes 0/4: gate low holds the count
    private bool _triggered;       // modes 1/5: a gate rising edge started the count
    private int? _pendingCount;    // modes 2/3: a new count waiting for the end of the period
    private long _pendingTick;
    private long _loadPendingUntil = Never; // null count until this tick
    private bool _idleOut = true;  // OUT before counting starts (low only in mode 0)
    private int _idleValue;        // what CE reads while it is not counting

    private int? _latchedCount;    // already encoded (BCD or binary)
    private byte? _latchedStatus;
    private bool _readMsbNext;
    private bool _writeMsbNext;
    private byte _writeLsb;

    public PitCounter(bool gate) => Gate = gate;

    private int Modulus => BcdMode ? 10000 : 65536;
    private int N => _count == 0 ? Modulus : _count;

    /// <summary>The state QEMU and a PC BIOS leave: mode 3, binary, LSB then MSB, count 65536, running since tick 0.</summary>
    public void PowerOn()
    {
        Control(3 << ModeShift | (byte)Access.LsbThenMsb << AccessShift, 0);
        LoadCount(0, -1);
    }

    // ---- guest interface ----

    public void Control(byte value, long tick)
    {
        Normalize(tick);
        _idleValue = Value(tick); // CE keeps what it held; the datasheet calls it undefined until a count is written
        ModeBits = (byte)((value & ModeMask) >> ModeShift);
        AccessMode = (Access)((value & AccessMask) >> AccessShift);
        BcdMode = (value & PitRegisters.Bcd) != 0;
        _counting = false;
        _hasCount = false;
        _triggered = false;
        _frozenElapsed = null;
        _pendingCount = null;
        _loadPendingUntil = Never;
        _idleOut = Mode != 0;
        _latchedCount = null;
        _latchedStatus = null;
        _readMsbNext = _writeMsbNext = false;
    }

    public void WriteCount(byte value, long tick)
    {
        switch (AccessMode)
        {
            case Access.Lsb: LoadRaw(value, tick); break;
            case Access.Msb: LoadRaw(value << 8, tick); break;
            default:
                if (!_writeMsbNext)
                {
                    _writeLsb = value;
                    _writeMsbNext = true;
                    if (Mode == 0)
                    {
                        // Mode 0: writing the first byte stops the count and sets OUT low at once.
                        Normalize(tick);
                        _idleValue = Value(tick);
                        _counting = false;
                        _idleOut = false;
                    }
                    return;
                }
                _writeMsbNext = false;
                LoadRaw(_writeLsb | value << 8, tick);
                break;
        }
    }

    private void LoadRaw(int raw, long tick) => LoadCount(BcdMode ? FromBcd(raw) : raw, tick);

    private void LoadCount(int count, long tick)
    {
        Normalize(tick);
        var wasCounting = _counting && _hasCount;
        _hasCount = true;
        switch (Mode)
        {
            case 0:
            case 4:
                _count = count;
                _counting = true;
                _loadTick = tick + 1;
                _frozenElapsed = Gate ? null : 0;
                _loadPendingUntil = tick + 1;
                _idleOut = Mode != 0;
                break;
            case 1:
            case 5:
                // Loaded into CE by the next gate trigger; a running count is not disturbed.
                if (!_triggered) _idleValue = Value(tick);
                _pendingCount = count;
                _pendingTick = Never;
                _loadPendingUntil = Never;
                break;
            default:
                if (wasCounting)
                {
                    // Modes 2 and 3: the new count takes effect at the end of the current period.
                    var t = tick - _loadTick;
                    var boundary = t < 0 ? _loadTick : _loadTick + (t / N + 1) * N;
                    _pendingCount = count;
                    _pendingTick = boundary;
                    _loadPendingUntil = boundary;
                }
                else
                {
                    _count = count;
                    _counting = Gate;
                    _loadTick = tick + 1;
                    _loadPendingUntil = Gate ? tick + 1 : Never;
                }
                break;
        }
    }

    public void Latch(long tick)
    {
        if (_latchedCount is null) _latchedCount = Encode(Value(tick));
    }

    public void LatchStatus(long tick)
    {
        if (_latchedStatus is null) _latchedStatus = Status(tick);
    }

    public byte Status(long tick)
    {
        Normalize(tick);
        var s = (byte)((byte)AccessMode << AccessShift | ModeBits << ModeShift | (BcdMode ? PitRegisters.Bcd : 0));
        if (Out(tick)) s |= StatusOutput;
        if (tick < _loadPendingUntil) s |= StatusNullCount;
        return s;
    }

    public byte Read(long tick)
    {
        if (_latchedStatus is { } status)
        {
            _latchedStatus = null;
            return status;
        }
        var value = _latchedCount ?? Encode(Value(tick));
        byte result;
        switch (AccessMode)
        {
            case Access.Lsb: result = (byte)value; _latchedCount = null; break;
            case Access.Msb: result = (byte)(value >> 8); _latchedCount = null; break;
            default:
                if (!_readMsbNext)
                {
                    result = (byte)value;
                    _readMsbNext = true;
                    if (_latchedCount is null) _latchedCount = value; // the MSB read must pair with this LSB
                    // (a free-running read of two bytes would otherwise tear; the datasheet leaves it undefined)
                }
                else
                {
                    result = (byte)(value >> 8);
                    _readMsbNext = false;
                    _latchedCount = null;
                }
                break;
        }
        return result;
    }

    public void SetGate(bool level, long tick)
    {
        Normalize(tick);
        if (level == Gate) return;
        if (level)
        {
            switch (Mode)
            {
                case 0:
                case 4:
                    if (_frozenElapsed is { } f) { _loadTick = tick - f; _frozenElapsed = null; }
                    break;
                case 1:
                case 5:
                    if (_hasCount)
                    {
                        if (_pendingCount is { } p) { _count = p; _pendingCount = null; }
                        _triggered = true;
                        _counting = true;
                        _loadTick = tick + 1;
                        _loadPendingUntil = Math.Min(_loadPendingUntil, tick + 1);
                    }
                    break;
                default:
                    if (_hasCount)
                    {
                        if (_pendingCount is { } p) { _count = p; _pendingCount = null; }
                        _counting = true;
                        _loadTick = tick + 1;
                        _loadPendingUntil = Math.Min(_loadPendingUntil, tick + 1);
                    }
                    break;
            }
        }
        else
        {
            switch (Mode)
            {
                case 0:
                case 4:
                    if (_counting && _frozenElapsed is null) _frozenElapsed = Math.Max(0, tick - _loadTick);
                    break;
                case 2:
                case 3:
                    if (_counting)
                    {
                        _idleValue = Value(tick);
                        _counting = false; // OUT goes high at once and stays there
                        _idleOut = true;
                    }
                    break;
            }
        }
        Gate = level;
    }

    // ---- the waveform ----

    /// <summary>Applies a mode 2/3 count change whose period boundary has passed.</summary>
    private void Normalize(long tick)
    {
        if (_pendingCount is { } p && _pendingTick != Never && tick >= _pendingTick)
        {
            _count = p;
            _loadTick = _pendingTick;
            _pendingCount = null;
        }
    }

    private long Elapsed(long tick) => _frozenElapsed ?? tick - _loadTick;

    private bool Running => _counting && (Mode is not (1 or 5) || _triggered);

    /// <summary>The count CE holds at <paramref name="tick"/> (binary, 0..modulus-1; 0 stands for the maximum).</summary>
    public int Value(long tick)
    {
        Normalize(tick);
        if (!Running) return _idleValue;
        var t = Elapsed(tick);
        if (t < 0) return _idleValue;
        var n = N;
        switch (Mode)
        {
            case 2:
                return (int)((n - t % n) % Modulus);
            case 3:
                {
                    var phase = t % n;
                    var high = (n + 1) / 2;
                    var h = phase < high ? phase : phase - high;
                    long v;
                    if ((n & 1) == 0) v = n - 2 * h;
                    else if (h == 0) v = n;
                    else v = phase < high ? n + 1 - 2 * h : n - 1 - 2 * h;
                    return (int)(v % Modulus);
                }
            default:
                return (int)(((n - t) % Modulus + Modulus) % Modulus);
        }
    }

    public bool Out(long tick)
    {
        Normalize(tick);
        if (!Running) return _idleOut;
        var t = Elapsed(tick);
        var n = N;
        return Mode switch
        {
            0 => t >= n,
            1 => t < 0 || t >= n,
            2 => t < 0 || n == 1 || t % n != n - 1,
            3 => t < 0 || t % n < (n + 1) / 2,
            _ => t != n, // 4 and 5: low for the one clock at which the count reaches zero
        };
    }

    /// <summary>The first tick after <paramref name="tick"/> at which OUT goes from low to high, if any.</summary>
    public long? NextRisingEdge(long tick)
    {
        if (_pendingCount is not null && _pendingTick != Never && tick >= _pendingTick) Normalize(tick);
        if (!Running || _frozenElapsed is not null) return null;
        var n = N;
        switch (Mode)
        {
            case 0:
            case 1:
                return _loadTick + n > tick ? _loadTick + n : null;
            case 4:
            case 5:
                return _loadTick + n + 1 > tick ? _loadTick + n + 1 : null;
            default:
                if (n == 1) return null;
                var t = tick - _loadTick;
                var edge = t < 0 ? _loadTick + n : _loadTick + (t / n + 1) * n;
                // A count change at a period boundary starts the new period there.
                if (_pendingCount is not null && _pendingTick != Never && edge >= _pendingTick) return _pendingTick > tick ? _pendingTick : edge;
                return edge;
        }
    }

    private int Encode(int value) => BcdMode ? ToBcd(value % 10000) : value & 0xFFFF;

    public static int ToBcd(int value) =>
        value % 10 | (value / 10 % 10) << 4 | (value / 100 % 10) << 8 | (value / 1000 % 10) << 12;

    /// <summary>BCD digits to binary; nibbles above 9 count as their binary value (the chip's behaviour is undefined).</summary>
    public static int FromBcd(int bcd) =>
        (bcd & 0xF) + ((bcd >> 4) & 0xF) * 10 + ((bcd >> 8) & 0xF) * 100 + ((bcd >> 12) & 0xF) * 1000;

    public PitCounterState Save() => new(
        ModeBits, (byte)AccessMode, BcdMode, Gate, _count, _hasCount, _counting, _loadTick, _frozenElapsed, _triggered,
        _pendingCount, _pendingTick, _loadPendingUntil, _idleOut, _idleValue, _latchedCount, _latchedStatus,
        _readMsbNext, _writeMsbNext, _writeLsb);

    /// <summary>A counter in a saved state; fields out of the chip's range are brought into it (a state is input too).</summary>
    public static PitCounter Restore(PitCounterState s)
    {
        var c = new PitCounter(s.Gate)
        {
            ModeBits = (byte)(s.ModeBits & 7),
            AccessMode = s.AccessMode is >= 1 and <= 3 ? (Access)s.AccessMode : Access.LsbThenMsb,
            BcdMode = s.BcdMode,
        };
        c._count = s.Count & 0xFFFF;
        c._hasCount = s.HasCount;
        c._counting = s.Counting;
        c._loadTick = s.LoadTick;
        c._frozenElapsed = s.FrozenElapsed;
        c._triggered = s.Triggered;
        c._pendingCount = s.PendingCount is { } p ? p & 0xFFFF : null;
        c._pendingTick = s.PendingTick;
        c._loadPendingUntil = s.LoadPendingUntil;
        c._idleOut = s.IdleOut;
        c._idleValue = s.IdleValue & 0xFFFF;
        c._latchedCount = s.LatchedCount is { } l ? l & 0xFFFF : null;
        c._latchedStatus = s.LatchedStatus;
        c._readMsbNext = s.ReadMsbNext;
        c._writeMsbNext = s.WriteMsbNext;
        c._writeLsb = s.WriteLsb;
        return c;
    }
}
