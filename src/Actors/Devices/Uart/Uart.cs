using System.Buffers;
using static Actorvisor.Actors.Devices.Uart.UartRegisters;

namespace Actorvisor.Actors.Devices.Uart;

/// <summary>
/// A 16550A UART (PC16550D datasheet). A plain model: no threads, no locks, no Akka. The guest reaches it
/// through <see cref="Read"/> and <see cref="Write"/> at offsets 0-7; the host feeds received bytes with
/// <see cref="Receive"/> and gets transmitted bytes in the output sink. The INTR pin drives
/// <see cref="IIrqLine"/> through the PC's OUT2 gate.
/// Transmission is instantaneous (no baud-rate timing), so the transmitter is always empty after a write
/// and the transmit FIFO never holds a byte. The receive FIFO holds at most <see cref="UartRegisters.FifoDepth"/>
/// bytes (one in 16450 mode): what the guest does not read in time is an overrun, as on the chip, and
/// never grows a host buffer (CVE-2020-27173 was a serial device with an unbounded receive buffer).
/// </summary>
public sealed class Uart
{
    private readonly IIrqLine _irq;
    private readonly IBufferWriter<byte> _output;

    private ushort _divisor = PowerOnDivisor;
    private byte _ier, _lcr, _mcr, _scr;
    private bool _fifoEnabled;
    private int _rxTrigger = 1;
    /// <summary>OE/PE/FE/BI, latched until LSR is read.</summary>
    private byte _lineErrors;
    /// <summary>MSR bits 0-3, latched until MSR is read.</summary>
    private byte _msrDeltas;
    /// <summary>The CTS/DSR/RI/DCD inputs from the host side of the line.</summary>
    private byte _modemInputs = ConnectedModemInputs;
    /// <summary>The THR-empty interrupt: set when THR empties or ETBEI is enabled, cleared by a THR write or an IIR read that reports it.</summary>
    private bool _thrInterrupt;
    private byte _lastRbr;
    private bool _irqLevel;

    // Receive FIFO: a fixed ring, never larger than the chip's.
    private readonly byte[] _rx = new byte[FifoDepth];
    private int _rxHead, _rxCount;

    public Uart(IIrqLine? irq = null, IBufferWriter<byte>? output = null)
    {
        _irq = irq ?? NoIrqLine.Instance;
        _output = output ?? new ArrayBufferWriter<byte>();
    }

    // ---- counters (Firecracker's serial metrics) ----
    public long TransmittedBytes { get; private set; }
    public long ReceivedBytes { get; private set; }
    /// <summary>Bytes lost because the receive FIFO was full (or the receiver disconnected in loopback).</summary>
    public long DroppedBytes { get; private set; }
    /// <summary>Accesses outside the eight registers.</summary>
    public long MissedReads { get; private set; }
    public long MissedWrites { get; private set; }

    /// <summary>The level of the UART's INTR pin, before the OUT2 gate.</summary>
    public bool InterruptPending => Identify() != IirBits.NoInterruptPending;

    /// <summary>The level this model drives on its interrupt line (INTR gated by OUT2).</summary>
    public bool IrqLevel => _irqLevel;

    public bool Loopback => (_mcr & McrBits.Loopback) != 0;
    public ushort Divisor => _divisor;
    private bool Dlab => (_lcr & LcrBits.DivisorLatchAccess) != 0;
    private int RxCapacity => _fifoEnabled ? FifoDepth : 1;
    /// <summary>How many more bytes the receiver takes before it overruns.</summary>
    public int ReceiveSpace => Loopback ? 0 : RxCapacity - _rxCount;

    // ---- guest side ----

    /// <summary>
    /// Reads <paramref name="size"/> bytes starting at <paramref name="offset"/>, little-endian, one register
    /// per byte as the ISA bus splits a wide access to an 8-bit device. Offsets past the registers read 0xFF.
    /// </summary>
    public ulong Read(ulong offset, int size)
    {
        ulong value = 0;
        for (var i = 0; i < size; i++)
        {
            var o = offset + (ulong)i;
            byte b;
            if (o < RegisterCount) b = ReadRegister((int)o);
            else { MissedReads++; b = 0xFF; }
            value |= (ulong)b << (8 * i);
        }
        return value;
    }

    public void Write(ulong offset, int size, ulong value)
    {
        for (var i = 0; i < size; i++)
        {
            var o = offset + (ulong)i;
            if (o < RegisterCount) WriteRegister((int)o, (byte)(value >> (8 * i)));
            else MissedWrites++;
        }
    }

    public byte ReadRegister(int offset)
    {
        byte v;
        switch (offset)
        {
            case Rbr when Dlab: v = (byte)_divisor; break;
            case Rbr: v = PopReceived(); break;
            case Ier when Dlab: v = (byte)(_divisor >> 8); break;
            case Ier: v = _ier; break;
            case Iir: v = ReadIir(); break;
            case Lcr: v = _lcr; break;
            case Mcr: v = _mcr; break;
            case Lsr: v = ReadLsr(); break;
            case Msr: v = ReadMsr(); break;
            case Scr: v = _scr; break;
            default: MissedReads++; return 0xFF;
        }
        UpdateIrq();
        return v;
    }

    public void WriteRegister(int offset, byte value)
    {
        switch (offset)
        {
            case Dll when Dlab: _divisor = (ushort)((_divisor & 0xFF00) | value); break;
            case Thr: Transmit(value); break;
            case Dlm when Dlab: _divisor = (ushort)((_divisor & 0x00FF) | (value << 8)); break;
            case Ier: WriteIer(value); break;
            case Fcr: WriteFcr(value); break;
            case Lcr: _lcr = value; break;
            case Mcr: WriteMcr(value); break;
            case Lsr: break; // the datasheet calls LSR writes "factory test": ignored
            case Msr: break; // read-only
            case Scr: _scr = value; break;
            default: MissedWrites++; return;
        }
        UpdateIrq();
    }

    // ---- host side ----

    /// <summary>
    /// A byte arrives on the serial input. Returns false if it was lost: the receive FIFO was full (the
    /// overrun bit is set, 8.4 bit 1) or the receiver is disconnected by loopback mode.
    /// </summary>
    public bool Receive(byte value)
    {
        if (Loopback)
        {
            DroppedBytes++;
            return false;
        }
        var taken = Enqueue(value);
        UpdateIrq();
        return taken;
    }

    /// <summary>Sets the host side's CTS/DSR/RI/DCD inputs (MSR bits 4-7); deltas are latched as on the chip.</summary>
    public void SetModemInputs(byte msrLines)
    {
        var before = ModemLines();
        _modemInputs = (byte)(msrLines & 0xF0);
        LatchModemDeltas(before, ModemLines());
        UpdateIrq();
    }

    /// <summary>Master reset (Table III): registers to their reset values; the divisor latch and scratch keep theirs.</summary>
    public void Reset()
    {
        _ier = _lcr = _mcr = 0;
        _fifoEnabled = false;
        _rxTrigger = 1;
        _lineErrors = _msrDeltas = 0;
        _thrInterrupt = false;
        _rxHead = _rxCount = 0;
        UpdateIrq();
    }

    // ---- registers with behaviour ----

    private void Transmit(byte value)
    {
        if (Loopback)
        {
            // 8.8 bit 4: the transmitter shift register feeds the receiver; serial output stays marking.
            Enqueue(value);
        }
        else
        {
            var span = _output.GetSpan(1);
            span[0] = value;
            _output.Advance(1);
            TransmittedBytes++;
        }
        // A THR write clears the THRE interrupt, but the byte leaves at once, so THR is empty again and
        // the interrupt is due anew.
        _thrInterrupt = true;
    }

    private void WriteIer(byte value)
    {
        var old = _ier;
        _ier = (byte)(value & IerBits.Writable);
        // Enabling ETBEI while THR is empty (it always is here) raises the THRE interrupt at once; drivers
        // rely on this to start transmission.
        if ((_ier & IerBits.ThrEmpty) != 0 && (old & IerBits.ThrEmpty) == 0) _thrInterrupt = true;
    }

    private void WriteFcr(byte value)
    {
        var enable = (value & FcrBits.FifoEnable) != 0;
        // Switching between 16450 and FIFO mode empties the FIFOs (8.7 bit 0).
        if (enable != _fifoEnabled) ClearReceiver();
        _fifoEnabled = enable;
        // The other bits are programmed only while FCR bit 0 is written as 1.
        if (!enable) return;
        if ((value & FcrBits.ClearReceiveFifo) != 0) ClearReceiver();
        // The transmit FIFO never holds a byte (transmission is instantaneous): nothing to clear.
        _rxTrigger = ((value & FcrBits.TriggerMask) >> 6) switch { 0 => 1, 1 => 4, 2 => 8, _ => 14 };
    }

    private void WriteMcr(byte value)
    {
        var before = ModemLines();
        _mcr = (byte)(value & McrBits.Writable);
        LatchModemDeltas(before, ModemLines());
    }

    private byte ReadIir()
    {
        var id = Identify();
        // Reading IIR clears a THRE interrupt when it is the source reported (Table IV).
        if (id == IirBits.ThrEmpty) _thrInterrupt = false;
        return (byte)(id | (_fifoEnabled ? IirBits.FifosEnabled : 0));
    }

    private byte ReadLsr()
    {
        // Bit 7 (error in RCVR FIFO) stays 0: host bytes arrive without parity, framing or break errors.
        byte v = (byte)(PowerOnLsr | _lineErrors);
        if (_rxCount > 0) v |= LsrBits.DataReady;
        _lineErrors = 0; // OE/PE/FE/BI clear on read (8.4)
        return v;
    }

    private byte ReadMsr()
    {
        var v = (byte)(ModemLines() | _msrDeltas);
        _msrDeltas = 0;
        return v;
    }

    /// <summary>
    /// The highest-priority pending, enabled interrupt (Table IV): line status, then received data (or the
    /// character timeout), then THR empty, then modem status.
    /// No time passes on our line, so a FIFO holding fewer bytes than the trigger level reports the
    /// character timeout at once instead of after four character times: the guest learns of every byte.
    /// </summary>
    private byte Identify()
    {
        if ((_ier & IerBits.ReceiverLineStatus) != 0 && _lineErrors != 0) return IirBits.ReceiverLineStatus;
        if ((_ier & IerBits.ReceivedDataAvailable) != 0 && _rxCount > 0)
            return _fifoEnabled && _rxCount < _rxTrigger ? IirBits.CharacterTimeout : IirBits.ReceivedDataAvailable;
        if ((_ier & IerBits.ThrEmpty) != 0 && _thrInterrupt) return IirBits.ThrEmpty;
        if ((_ier & IerBits.ModemStatus) != 0 && _msrDeltas != 0) return IirBits.ModemStatus;
        return IirBits.NoInterruptPending;
    }

    /// <summary>
    /// Drives the interrupt line: INTR gated by OUT2 as on a PC. Loopback mode forces the OUT2 pin inactive
    /// (8.8 bit 4), so the PC's gate closes and no interrupt reaches the controller while looped back.
    /// </summary>
    private void UpdateIrq()
    {
        var level = GatedInterrupt();
        if (level == _irqLevel) return;
        _irqLevel = level;
        _irq.Set(level);
    }

    private bool GatedInterrupt() => InterruptPending && (_mcr & (McrBits.Out2 | McrBits.Loopback)) == McrBits.Out2;

    // ---- receive FIFO ----

    private bool Enqueue(byte value)
    {
        if (_rxCount == RxCapacity)
        {
            _lineErrors |= LsrBits.OverrunError;
            DroppedBytes++;
            if (_fifoEnabled) return false; // FIFO mode: the FIFO keeps its bytes, the new one is lost
            _rx[_rxHead] = value;           // 16450 mode: the new byte overwrites the unread one
            ReceivedBytes++;
            return true;
        }
        _rx[(_rxHead + _rxCount) % FifoDepth] = value;
        _rxCount++;
        ReceivedBytes++;
        return true;
    }

    private byte PopReceived()
    {
        if (_rxCount == 0) return _lastRbr;
        _lastRbr = _rx[_rxHead];
        _rxHead = (_rxHead + 1) % FifoDepth;
        _rxCount--;
        return _lastRbr;
    }

    private void ClearReceiver() { _rxHead = 0; _rxCount = 0; }

    // ---- modem lines ----

    /// <summary>MSR bits 4-7: the host's inputs, or in loopback the MCR outputs wired back (8.8 bit 4).</summary>
    private byte ModemLines()
    {
        if (!Loopback) return _modemInputs;
        byte v = 0;
        if ((_mcr & McrBits.Rts) != 0) v |= MsrBits.Cts;
        if ((_mcr & McrBits.Dtr) != 0) v |= MsrBits.Dsr;
        if ((_mcr & McrBits.Out1) != 0) v |= MsrBits.Ri;
        if ((_mcr & McrBits.Out2) != 0) v |= MsrBits.Dcd;
        return v;
    }

    private void LatchModemDeltas(byte before, byte after)
    {
        var changed = (byte)(before ^ after);
        if ((changed & MsrBits.Cts) != 0) _msrDeltas |= MsrBits.DeltaCts;
        if ((changed & MsrBits.Dsr) != 0) _msrDeltas |= MsrBits.DeltaDsr;
        if ((changed & MsrBits.Dcd) != 0) _msrDeltas |= MsrBits.DeltaDcd;
        // TERI: RI went from active to inactive.
        if ((before & MsrBits.Ri) != 0 && (after & MsrBits.Ri) == 0) _msrDeltas |= MsrBits.TrailingEdgeRi;
    }

    // ---- save and restore ----

    public UartState Save() => new(
        _divisor, _ier, _lcr, _mcr, _scr, _fifoEnabled, (byte)_rxTrigger, _lineErrors, _msrDeltas, _modemInputs,
        _thrInterrupt, _lastRbr, ReceivedFifo());

    /// <summary>Builds a UART in a saved state and drives its interrupt line to the restored level.</summary>
    public static Uart Restore(UartState s, IIrqLine? irq = null, IBufferWriter<byte>? output = null)
    {
        var u = new Uart(irq, output)
        {
            _divisor = s.Divisor, _ier = (byte)(s.Ier & IerBits.Writable), _lcr = s.Lcr,
            _mcr = (byte)(s.Mcr & McrBits.Writable), _scr = s.Scr, _fifoEnabled = s.FifoEnabled,
            _rxTrigger = s.RxTrigger is 1 or 4 or 8 or 14 ? s.RxTrigger : 1,
            _lineErrors = (byte)(s.LineErrors & LsrBits.LineErrors), _msrDeltas = (byte)(s.MsrDeltas & MsrBits.Deltas),
            _modemInputs = (byte)(s.ModemInputs & 0xF0), _thrInterrupt = s.ThrInterrupt, _lastRbr = s.LastRbr,
        };
        // A saved FIFO longer than the chip's is cut to its depth: a state file is input too.
        var fifo = s.ReceiveFifo.AsSpan(0, Math.Min(s.ReceiveFifo.Length, u.RxCapacity));
        fifo.CopyTo(u._rx);
        u._rxCount = fifo.Length;
        // The line's wiring is new: drive it once to the restored level.
        u._irqLevel = u.GatedInterrupt();
        u._irq.Set(u._irqLevel);
        return u;
    }

    private byte[] ReceivedFifo()
    {
        var bytes = new byte[_rxCount];
        for (var i = 0; i < _rxCount; i++) bytes[i] = _rx[(_rxHead + i) % FifoDepth];
        return bytes;
    }
}
