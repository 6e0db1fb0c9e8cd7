using System.Numerics;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Actors.Cpu.Lapic.LapicRegisters;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Cpu.Lapic;

/// <summary>What a LAPIC sends out: IPIs to the APIC bus, EOIs to the IOAPIC, NMIs to its own CPU.</summary>
public interface ILapicOutput
{
    /// <summary>An ICR send that is not for this LAPIC alone.</summary>
    void SendIpi(LapicDeliver message);
    /// <summary>EOI of a level-triggered vector (TMR set): the IOAPIC clears Remote IRR.</summary>
    void BroadcastEoi(byte vector);
    void Nmi();
    /// <summary>An INIT message arrived (level assert): the CPU goes to its INIT state and waits for a SIPI.</summary>
    void Init();
    /// <summary>A STARTUP IPI arrived with this vector; only a CPU waiting for a SIPI acts on it.</summary>
    void StartUp(byte vector);
}

/// <summary>
/// The local APIC of one vCPU (xAPIC mode, SDM Vol. 3A, chapter 11). A plain model: register reads and
/// writes by offset, <see cref="Accept"/> for interrupt messages, <see cref="SetLint"/> for the LINT pins,
/// <see cref="Acknowledge"/> for the CPU's interrupt acknowledge. Its timer counts bus clocks computed from
/// an injected <see cref="TimeProvider"/>; the expiry is armed on a host timer whose callback
/// (<c>timerFired</c>, any thread) must bring the generation back to <see cref="OnTimerExpired"/> on the
/// owner's thread. Not thread-safe: one owner (the vCPU thread) calls it.
/// </summary>
public sealed class Lapic : IDisposable
{
    private readonly ILapicOutput _out;
    private readonly TimeProvider _time;
    private readonly ulong _busHz;
    private readonly Action<long> _timerFired;
    private readonly uint[] _irr = new uint[8], _isr = new uint[8], _tmr = new uint[8];
    private readonly uint[] _lvt = new uint[LvtCount];
    private readonly bool[] _lint = new bool[2];
    private uint _id, _tpr, _ldr, _dfr, _svr, _esr, _esrPending, _icrLow, _icrHigh;
    private bool _extIntLatched;

    // Timer: counting since _timerStart (host timestamp) with _timerDivisor captured at the initial-count write.
    private uint _timerInitial, _timerDivide;
    private int _timerDivisor = 2;
    private long _timerStart, _timerDeadline;
    private bool _timerRunning;
    private long _timerGeneration;
    private ITimer? _hostTimer;

    public int VcpuId { get; }
    /// <summary>The APIC ID the hardware assigns (from the topology); the ID register's value after power-on.</summary>
    public byte InitialApicId { get; }
    public long IgnoredMessages { get; private set; }
    public long TimerFirings { get; private set; }

    /// <param name="apicId">The APIC ID from the VM's topology; the vCPU id when null.</param>
    public Lapic(int vcpuId, ILapicOutput output, TimeProvider time, ulong busHz, Action<long> timerFired, byte? apicId = null)
    {
        VcpuId = vcpuId;
        InitialApicId = apicId ?? (byte)vcpuId;
        _out = output;
        _time = time;
        _busHz = busHz;
        _timerFired = timerFired;
        Reset();
    }

    /// <summary>Power-on/INIT state (SDM 11.4.7.1): software-disabled, every LVT masked, DFR flat.</summary>
    public void Reset()
    {
        _version++;
        Array.Clear(_irr); Array.Clear(_isr); Array.Clear(_tmr);
        for (var i = 0; i < LvtCount; i++) _lvt[i] = LvtMasked;
        _id = (uint)InitialApicId << IdShift;
        _tpr = _ldr = _esr = _esrPending = _icrLow = _icrHigh = 0;
        _dfr = 0xFFFF_FFFF;
        _svr = SvrPowerOn;
        _extIntLatched = false;
        _timerInitial = _timerDivide = 0;
        _timerDivisor = 2;
        StopTimer();
    }

    /// <summary>
    /// The LAPIC's part of an INIT (SDM Vol. 3A, 11.4.7.3): as power-on, except that the APIC ID register keeps
    /// what software wrote there.
    /// </summary>
    public void InitReset()
    {
        var id = _id;
        Reset();
        _id = id;
    }

    /// <summary>
    /// The state a BIOS leaves the BSP's LAPIC in (virtual wire mode, MP spec 3.6.2.2): software-enabled,
    /// LINT0 ExtINT (the 8259's INTR), LINT1 NMI. We have no BIOS, so the VM applies this at boot.
    /// </summary>
    public void EnterVirtualWireMode()
    {
        _version++;
        _svr |= SvrEnable;
        _lvt[LvtLint0Index] = (uint)DeliveryMode.ExtInt << LvtDeliveryModeShift;
        _lvt[LvtLint1Index] = (uint)DeliveryMode.Nmi << LvtDeliveryModeShift;
    }

    public bool SoftwareEnabled => (_svr & SvrEnable) != 0;
    public byte ApicId => (byte)(_id >> IdShift);
    public byte LogicalId => (byte)(_ldr >> 24);
    public bool FlatModel => (_dfr & DfrModelMask) == DfrFlat;
    public uint Tpr => _tpr;
    public uint Lvt(int index) => _lvt[index];

    // ---- interrupt state ----

    private static bool Test(uint[] bits, int v) => (bits[v >> 5] & (1u << (v & 31))) != 0;
    private static void Set(uint[] bits, int v) => bits[v >> 5] |= 1u << (v & 31);
    private static void Clear(uint[] bits, int v) => bits[v >> 5] &= ~(1u << (v & 31));

    private static int Highest(uint[] bits)
    {
        for (var i = 7; i >= 0; i--)
            if (bits[i] != 0) return i * 32 + 31 - BitOperations.LeadingZeroCount(bits[i]);
        return -1;
    }

    /// <summary>PPR (SDM 11.8.3.1): TPR if its class is at least the highest in-service class, else that class.</summary>
    public uint Ppr
    {
        get
        {
            var isrv = Highest(_isr);
            var isrClass = isrv < 0 ? 0u : (uint)isrv & 0xF0;
            return (_tpr & 0xF0) >= isrClass ? _tpr : isrClass;
        }
    }

    /// <summary>The vector the CPU would take now: highest in IRR whose class is above PPR's; -1 if none.</summary>
    public int PendingVector
    {
        get
        {
            var v = Highest(_irr);
            if (v < 0 || (v & 0xF0) <= (Ppr & 0xF0)) return -1;
            return v;
        }
    }

    /// <summary>An ExtINT is pending: LINT0 programmed ExtINT with INTR high, or an ExtINT message latched.</summary>
    public bool ExtIntPending
    {
        get
        {
            if (_extIntLatched) return true;
            var lvt = _lvt[LvtLint0Index];
            return _lint[0] && (lvt & LvtMasked) == 0 &&
                   (DeliveryMode)((lvt & LvtDeliveryModeMask) >> LvtDeliveryModeShift) == DeliveryMode.ExtInt;
        }
    }

    // The run loop asks HasInterrupt after every block (a tenth of a Linux boot's vCPU time went to scanning
    // IRR and ISR). The answer changes only when the state does: every public method that changes IRR, ISR,
    // TPR, an LVT, SVR or a LINT level bumps _version, and the answer is kept for one version.
    private int _version, _answeredVersion = -1;
    private bool _answer;

    public bool HasInterrupt
    {
        get
        {
            if (_answeredVersion == _version) return _answer;
            _answer = ExtIntPending || PendingVector >= 0;
            _answeredVersion = _version;
            return _answer;
        }
    }

    /// <summary>The CPU takes the pending vector: IRR → ISR. -1 if nothing is deliverable.</summary>
    public int Acknowledge()
    {
        _version++;
        var v = PendingVector;
        if (v < 0) return -1;
        Clear(_irr, v);
        Set(_isr, v);
        return v;
    }

    /// <summary>The ExtINT was taken (the 8259 INTA happened): a latched ExtINT message is consumed.</summary>
    public void ExtIntAcknowledged()
    {
        _version++;
        _extIntLatched = false;
    }

    /// <summary>The INTR level after the 8259's INTA (so a stale level from before it does not linger).</summary>
    public void SetLint0Level(bool level)
    {
        _version++;
        _lint[0] = level;
    }

    /// <summary>An interrupt message for this LAPIC (from the IOAPIC, an MSI, an IPI or a local source).</summary>
    public void Accept(DeliveryMode mode, byte vector, TriggerMode trigger)
    {
        _version++;
        switch (mode)
        {
            case DeliveryMode.Fixed:
            case DeliveryMode.LowestPriority:
                // A software-disabled LAPIC drops fixed interrupts (bhyve does the same; SDM 11.4.7.2 leaves it to software).
                if (!SoftwareEnabled)
                {
                    IgnoredMessages++;
                    return;
                }
                if (vector < 16)
                {
                    Error(EsrReceiveIllegalVector);
                    return;
                }
                Set(_irr, vector);
                if (trigger == TriggerMode.Level) Set(_tmr, vector); else Clear(_tmr, vector);
                return;
            case DeliveryMode.Nmi:
                _out.Nmi();
                return;
            case DeliveryMode.ExtInt:
                _extIntLatched = true;
                return;
            case DeliveryMode.Init:
                // INIT and SIPI are for the processor, not the LAPIC; neither needs the LAPIC software-enabled.
                _out.Init();
                return;
            case DeliveryMode.Startup:
                _out.StartUp(vector);
                return;
            default:
                // SMI: there is no SMM.
                IgnoredMessages++;
                return;
        }
    }

    /// <summary>A LINT pin changed level (LINT0: the 8259's INTR; LINT1: NMI on a PC).</summary>
    public void SetLint(int pin, bool level)
    {
        _version++;
        var was = _lint[pin];
        _lint[pin] = level;
        var lvt = _lvt[LvtLint0Index + pin];
        if ((lvt & LvtMasked) != 0) return;
        var mode = (DeliveryMode)((lvt & LvtDeliveryModeMask) >> LvtDeliveryModeShift);
        if (mode == DeliveryMode.ExtInt) return; // level-sensitive: read through ExtIntPending
        var levelTriggered = (lvt & LvtLevelTriggered) != 0 && mode == DeliveryMode.Fixed;
        if (!level) return;
        if (!levelTriggered)
        {
            if (!was) Accept(mode, (byte)(lvt & LvtVectorMask), TriggerMode.Edge);
            return;
        }
        AcceptLevelLint(pin);
    }

    /// <summary>
    /// A fixed, level-triggered LINT pin (SDM 11.5.1): accepted once and Remote IRR set until the EOI for its
    /// vector; a line still high then is accepted again.
    /// </summary>
    private void AcceptLevelLint(int pin)
    {
        ref var lvt = ref _lvt[LvtLint0Index + pin];
        if ((lvt & LvtRemoteIrr) != 0 || !SoftwareEnabled) return;
        var vector = (byte)(lvt & LvtVectorMask);
        Accept(DeliveryMode.Fixed, vector, TriggerMode.Level);
        if (vector >= 16) lvt |= LvtRemoteIrr;
    }

    private void Error(uint bit)
    {
        _esrPending |= bit;
        var lvt = _lvt[LvtErrorIndex];
        if ((lvt & LvtMasked) != 0 || !SoftwareEnabled) return;
        var v = (byte)(lvt & LvtVectorMask);
        if (v < 16) { _esrPending |= EsrReceiveIllegalVector; return; } // no recursion on a bad error vector
        Set(_irr, v);
        Clear(_tmr, v);
    }

    private void LocalLvt(int index)
    {
        var lvt = _lvt[index];
        if ((lvt & LvtMasked) != 0) return;
        var mode = index is LvtTimerIndex or LvtErrorIndex
            ? DeliveryMode.Fixed
            : (DeliveryMode)((lvt & LvtDeliveryModeMask) >> LvtDeliveryModeShift);
        Accept(mode, (byte)(lvt & LvtVectorMask), TriggerMode.Edge);
    }

    // ---- registers ----

    /// <summary>Reads the register at <paramref name="offset"/>; narrower reads take the bytes they cover.</summary>
    public uint Read(ulong offset, int size)
    {
        var reg = (uint)(offset & 0xFF0);
        var within = (int)(offset & 0xF);
        if (within + size > 4) return 0; // only the low dword of each 16-byte slot exists
        var v = ReadRegister(reg);
        return size >= 4 ? v : (v >> (8 * within)) & ((1u << (8 * size)) - 1);
    }

    private uint ReadRegister(uint reg)
    {
        switch (reg)
        {
            case Id: return _id;
            case LapicRegisters.Version: return VersionValue;
            case LapicRegisters.Tpr: return _tpr;
            case Apr: return 0;
            case LapicRegisters.Ppr: return Ppr;
            case Ldr: return _ldr;
            case Dfr: return _dfr;
            case Svr: return _svr;
            case Esr: return _esr;
            case IcrLow: return _icrLow;
            case IcrHigh: return _icrHigh;
            case TimerInitialCount: return _timerInitial;
            case TimerCurrentCount: return CurrentCount();
            case TimerDivide: return _timerDivide;
            case Eoi: return 0; // write-only
        }
        if (reg is >= IsrBase and < IsrBase + 0x80) return _isr[(reg - IsrBase) >> 4];
        if (reg is >= TmrBase and < TmrBase + 0x80) return _tmr[(reg - TmrBase) >> 4];
        if (reg is >= IrrBase and < IrrBase + 0x80) return _irr[(reg - IrrBase) >> 4];
        var lvt = LvtIndex(reg);
        if (lvt >= 0) return _lvt[lvt];
        _esrPending |= EsrIllegalRegister;
        return 0;
    }

    /// <summary>Writes a register. Only aligned 32-bit writes count (SDM 11.4.1); reserved bits are ignored.</summary>
    public void Write(ulong offset, int size, uint value)
    {
        _version++;
        if (size != 4 || (offset & 0xF) != 0) return;
        var reg = (uint)offset;
        switch (reg)
        {
            case Id: _id = value & (0xFFu << IdShift); return;
            case LapicRegisters.Tpr: _tpr = value & 0xFF; return;
            case Eoi: WriteEoi(); return;
            case Ldr: _ldr = value & LdrMask; return;
            case Dfr: _dfr = (value & DfrModelMask) | DfrReservedOnes; return;
            case Svr: WriteSvr(value); return;
            case Esr:
                // Reading ESR needs a write first: the write latches the errors seen since the last one.
                _esr = _esrPending;
                _esrPending = 0;
                return;
            case IcrHigh: _icrHigh = value & IcrHighWritable; return;
            case IcrLow:
                _icrLow = value & IcrLowWritable;
                SendIpi();
                return;
            case TimerInitialCount: StartTimer(value); return;
            case TimerDivide: _timerDivide = value & TimerDivideWritable; return;
        }
        var i = LvtIndex(reg);
        if (i >= 0)
        {
            var v = value & LvtWritable[i];
            // While software-disabled the mask bits stay set (SDM 11.4.7.2); remote IRR and status are the chip's.
            if (!SoftwareEnabled) v |= LvtMasked;
            _lvt[i] = v | (_lvt[i] & LvtRemoteIrr);
            return;
        }
        if (reg is LapicRegisters.Version or LapicRegisters.Ppr or Apr or Rrd or TimerCurrentCount || reg is >= IsrBase and < IrrBase + 0x80)
            return; // read-only
        _esrPending |= EsrIllegalRegister;
    }

    private void WriteSvr(uint value)
    {
        _svr = value & SvrWritable;
        if (!SoftwareEnabled)
            for (var i = 0; i < LvtCount; i++) _lvt[i] |= LvtMasked;
    }

    private void WriteEoi()
    {
        var v = Highest(_isr);
        if (v < 0) return;
        Clear(_isr, v);
        if (!Test(_tmr, v)) return;
        _out.BroadcastEoi((byte)v);
        for (var pin = 0; pin < 2; pin++)
        {
            ref var lvt = ref _lvt[LvtLint0Index + pin];
            if ((lvt & LvtRemoteIrr) == 0 || (lvt & LvtVectorMask) != (uint)v) continue;
            lvt &= ~LvtRemoteIrr;
            if (_lint[pin] && (lvt & (LvtMasked | LvtLevelTriggered | LvtDeliveryModeMask)) == LvtLevelTriggered) AcceptLevelLint(pin);
        }
    }

    private void SendIpi()
    {
        var mode = (DeliveryMode)((_icrLow & IcrDeliveryModeMask) >> IcrDeliveryModeShift);
        var vector = (byte)(_icrLow & IcrVectorMask);
        var shorthand = (DestinationShorthand)((_icrLow & IcrShorthandMask) >> IcrShorthandShift);
        var trigger = (_icrLow & IcrLevelTriggered) != 0 ? TriggerMode.Level : TriggerMode.Edge;
        if (mode is DeliveryMode.Fixed or DeliveryMode.LowestPriority && vector < 16)
        {
            Error(EsrSendIllegalVector);
            return;
        }
        // INIT level de-assert is a no-op on everything after the Pentium.
        if (mode == DeliveryMode.Init && (_icrLow & IcrLevelAssert) == 0) return;
        if (shorthand == DestinationShorthand.Self)
        {
            // A self-IPI is accepted here, without a bus trip. The SDM (11.6.1, Table 11-4 note) allows only fixed
            // mode with "self"; bhyve also delivers a self-NMI. The other modes are invalid and go nowhere.
            if (mode is DeliveryMode.Fixed or DeliveryMode.Nmi) Accept(mode, vector, trigger);
            else IgnoredMessages++;
            return;
        }
        if (shorthand == DestinationShorthand.AllIncludingSelf)
        {
            Accept(mode, vector, trigger);
            shorthand = DestinationShorthand.AllExcludingSelf;
        }
        _out.SendIpi(new LapicDeliver(vector, mode, trigger,
            new ApicDestination((byte)(_icrHigh >> 24), (_icrLow & IcrLogical) != 0, shorthand, VcpuId),
            (_icrLow & IcrLevelAssert) != 0));
    }

    // ---- timer ----

    private long BusTicksToTimestamp(Int128 ticks) =>
        (long)((ticks * _time.TimestampFrequency + (Int128)(_busHz - 1)) / _busHz);

    private void StartTimer(uint initial)
    {
        _timerInitial = initial;
        StopTimer();
        if (initial == 0) return;
        _timerDivisor = Divisor(_timerDivide);
        _timerStart = _time.GetTimestamp();
        _timerRunning = true;
        _timerDeadline = _timerStart + BusTicksToTimestamp((Int128)initial * _timerDivisor);
        Arm();
    }

    private void StopTimer()
    {
        _timerRunning = false;
        _timerGeneration++;
        _hostTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    private void Arm()
    {
        var now = _time.GetTimestamp();
        var due = _timerDeadline <= now
            ? TimeSpan.Zero
            : TimeSpan.FromTicks((long)(((Int128)(_timerDeadline - now) * TimeSpan.TicksPerSecond + _time.TimestampFrequency - 1)
                                        / _time.TimestampFrequency)); // rounded up: never before the deadline
        var generation = _timerGeneration;
        // A fresh callback per arming carries its generation; a stale expiry is recognised and dropped.
        _hostTimer?.Dispose();
        _hostTimer = _time.CreateTimer(_ => _timerFired(generation), null, due, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Current count (SDM 11.5.4): counts down from the initial count at bus clock / divisor.</summary>
    private uint CurrentCount()
    {
        if (!_timerRunning) return 0;
        var elapsed = (Int128)(_time.GetTimestamp() - _timerStart) * _busHz / _time.TimestampFrequency / _timerDivisor;
        if ((_lvt[LvtTimerIndex] & LvtTimerPeriodic) != 0) return (uint)(_timerInitial - (uint)(elapsed % _timerInitial));
        return elapsed >= _timerInitial ? 0 : (uint)(_timerInitial - (uint)elapsed);
    }

    /// <summary>The host timer armed for <paramref name="generation"/> expired: fire the LVT timer, re-arm if periodic.</summary>
    public void OnTimerExpired(long generation)
    {
        _version++;
        if (generation != _timerGeneration || !_timerRunning) return;
        TimerFirings++;
        LocalLvt(LvtTimerIndex);
        if ((_lvt[LvtTimerIndex] & LvtTimerPeriodic) != 0)
        {
            // The next period starts at the previous deadline, not at the callback's late arrival: no drift.
            _timerStart = _timerDeadline;
            _timerDeadline += BusTicksToTimestamp((Int128)_timerInitial * _timerDivisor);
            _timerGeneration++;
            Arm();
        }
        else
        {
            _timerRunning = false;
        }
    }

    public void Dispose() => _hostTimer?.Dispose();

    // ---- inspection ----
    public bool IrrBit(int v) => Test(_irr, v);
    public bool IsrBit(int v) => Test(_isr, v);
    public bool TmrBit(int v) => Test(_tmr, v);
}
