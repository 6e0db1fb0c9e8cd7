using System.Buffers;
using Actorvisor.Actors.Devices;
using Actorvisor.Actors.Devices.Uart;
using static Actorvisor.Actors.Devices.Uart.UartRegisters;

namespace Actorvisor.Actors.Tests.Devices.Uart;

/// <summary>Records every level the model drives on its interrupt line.</summary>
internal sealed class RecordingLine : IIrqLine
{
    public readonly List<bool> Levels = new();
    public bool Level => Levels.Count > 0 && Levels[^1];
    public void Set(bool level) => Levels.Add(level);
}

/// <summary>The 16550A model against the PC16550D datasheet's register semantics.</summary>
public class UartTests
{
    private readonly RecordingLine _line = new();
    private readonly ArrayBufferWriter<byte> _out = new();
    private readonly Actorvisor.Actors.Devices.Uart.Uart _uart;

    public UartTests() => _uart = new Actorvisor.Actors.Devices.Uart.Uart(_line, _out);

    private byte R(int offset) => _uart.ReadRegister(offset);
    private void W(int offset, byte value) => _uart.WriteRegister(offset, value);

    /// <summary>What a PC driver does first: OUT2 on, so the UART's interrupt reaches the PIC.</summary>
    private void EnableOut2() => W(Mcr, McrBits.Out2 | McrBits.Dtr | McrBits.Rts);

    [Fact]
    public void PowerOnValuesFollowTheMasterResetTable()
    {
        Assert.Equal(0x00, R(Ier));
        Assert.Equal(0x01, R(Iir)); // no interrupt pending, FIFOs off
        Assert.Equal(0x00, R(Lcr));
        Assert.Equal(0x00, R(Mcr));
        Assert.Equal(0x60, R(Lsr)); // THRE | TEMT
        Assert.Equal(ConnectedModemInputs, R(Msr)); // no deltas; CTS, DSR, DCD from a live peer
        Assert.Empty(_line.Levels);
    }

    [Fact]
    public void ThrWriteTransmitsAndRaisesThrEmptyInterrupt()
    {
        EnableOut2();
        W(Ier, IerBits.ThrEmpty); // enabling ETBEI with THR empty raises the interrupt at once
        Assert.Equal(IirBits.ThrEmpty, R(Iir)); // reading IIR when THRE is the source clears it
        Assert.Equal(IirBits.NoInterruptPending, R(Iir));
        Assert.Equal([true, false], _line.Levels);

        W(Thr, (byte)'A');
        Assert.Equal("A"u8.ToArray(), _out.WrittenSpan.ToArray());
        Assert.True(_line.Level); // THR emptied again
        Assert.Equal(LsrBits.ThrEmpty | LsrBits.TransmitterEmpty, R(Lsr) & 0x60);
        Assert.Equal(IirBits.ThrEmpty, R(Iir));
        Assert.False(_line.Level);
    }

    [Fact]
    public void ThrEmptyInterruptNeedsEtbei()
    {
        EnableOut2();
        W(Thr, (byte)'x');
        Assert.Equal(IirBits.NoInterruptPending, R(Iir));
        Assert.Empty(_line.Levels);
    }

    [Fact]
    public void ReceivedDataRaisesInterruptAndSetsDataReady()
    {
        EnableOut2();
        W(Ier, IerBits.ReceivedDataAvailable);
        Assert.Equal(0, R(Lsr) & LsrBits.DataReady);
        Assert.True(_uart.Receive(0x42));
        Assert.True(_line.Level);
        Assert.Equal(IirBits.ReceivedDataAvailable, R(Iir));
        Assert.Equal(LsrBits.DataReady, R(Lsr) & LsrBits.DataReady);
        Assert.Equal(0x42, R(Rbr));
        // Reading RBR empties the holding register: DR and the interrupt clear.
        Assert.Equal(0, R(Lsr) & LsrBits.DataReady);
        Assert.Equal(IirBits.NoInterruptPending, R(Iir));
        Assert.False(_line.Level);
    }

    [Fact]
    public void FifoModeReportsTimeoutBelowTriggerAndDataAvailableAtIt()
    {
        EnableOut2();
        W(Fcr, FcrBits.FifoEnable | 0x40); // trigger level 4
        W(Ier, IerBits.ReceivedDataAvailable);
        _uart.Receive(1);
        _uart.Receive(2);
        Assert.Equal(IirBits.FifosEnabled | IirBits.CharacterTimeout, R(Iir));
        _uart.Receive(3);
        _uart.Receive(4);
        Assert.Equal(IirBits.FifosEnabled | IirBits.ReceivedDataAvailable, R(Iir));
        Assert.Equal(1, R(Rbr)); // oldest first
        Assert.Equal(IirBits.FifosEnabled | IirBits.CharacterTimeout, R(Iir));
    }

    [Fact]
    public void IirReportsTheHighestPrioritySource()
    {
        EnableOut2();
        W(Ier, IerBits.Writable & ~IerBits.ThrEmpty);
        // Modem status alone (priority 4): a change of CTS.
        _uart.SetModemInputs(MsrBits.Dsr | MsrBits.Dcd);
        Assert.Equal(IirBits.ModemStatus, R(Iir));
        Assert.True(_line.Level);
        // THR empty (priority 3) outranks it: enabling ETBEI raises it.
        W(Ier, IerBits.Writable);
        Assert.Equal(IirBits.ThrEmpty, R(Iir)); // (and this read clears it)
        // Received data (priority 2) outranks modem status.
        _uart.Receive(7);
        Assert.Equal(IirBits.ReceivedDataAvailable, R(Iir));
        // Line status (priority 1) outranks everything: overrun the one-byte holding register.
        _uart.Receive(8);
        Assert.Equal(IirBits.ReceiverLineStatus, R(Iir));
        // Reading LSR clears the error; data available is next.
        Assert.Equal(LsrBits.OverrunError, R(Lsr) & LsrBits.OverrunError);
        Assert.Equal(IirBits.ReceivedDataAvailable, R(Iir));
        R(Rbr);
        Assert.Equal(IirBits.ModemStatus, R(Iir));
        // Reading MSR clears the deltas: nothing left.
        Assert.Equal(MsrBits.DeltaCts, R(Msr) & MsrBits.Deltas);
        Assert.Equal(IirBits.NoInterruptPending, R(Iir));
        Assert.False(_line.Level);
    }

    [Fact]
    public void DlabSwitchesOffsetsZeroAndOneToTheDivisorLatch()
    {
        W(Ier, IerBits.ReceivedDataAvailable);
        W(Lcr, LcrBits.DivisorLatchAccess | 0x03);
        Assert.Equal(PowerOnDivisor, R(Dll) | (R(Dlm) << 8));
        W(Dll, 0x01); // 115200 baud
        W(Dlm, 0x00);
        Assert.Equal(0x0001, _uart.Divisor);
        Assert.Empty(_out.WrittenSpan.ToArray()); // a DLL write is not a transmission
        W(Lcr, 0x03);
        Assert.Equal(IerBits.ReceivedDataAvailable, R(Ier)); // IER kept its value behind the latch
        W(Thr, (byte)'z');
        Assert.Equal("z"u8.ToArray(), _out.WrittenSpan.ToArray());
        Assert.Equal(0x0001, _uart.Divisor);
    }

    [Fact]
    public void ScratchRegisterHoldsAnyByte()
    {
        for (var v = 0; v < 256; v += 17)
        {
            W(Scr, (byte)v);
            Assert.Equal(v, R(Scr));
        }
    }

    [Fact]
    public void LoopbackFeedsTransmitterIntoReceiverAndModemOutputsIntoInputs()
    {
        W(Mcr, McrBits.Loopback | McrBits.Rts | McrBits.Out2); // the check Linux's 8250 probe does
        Assert.Equal(MsrBits.Cts | MsrBits.Dcd, R(Msr) & 0xF0);
        W(Thr, 0x55);
        Assert.Empty(_out.WrittenSpan.ToArray()); // serial output stays marking
        Assert.Equal(LsrBits.DataReady, R(Lsr) & LsrBits.DataReady);
        Assert.Equal(0x55, R(Rbr));
        W(Mcr, McrBits.Loopback | McrBits.Dtr | McrBits.Out1);
        Assert.Equal(MsrBits.Dsr | MsrBits.Ri, R(Msr) & 0xF0);
        // Host input cannot reach a receiver wired to its own transmitter.
        Assert.False(_uart.Receive(0x99));
        Assert.Equal(0, R(Lsr) & LsrBits.DataReady);
    }

    [Fact]
    public void LoopbackInterruptsAreIdentifiedButDoNotLeaveThePcGate()
    {
        W(Mcr, McrBits.Loopback | McrBits.Out2);
        W(Ier, IerBits.ReceivedDataAvailable);
        W(Thr, 1);
        Assert.True(_uart.InterruptPending);
        Assert.Equal(IirBits.ReceivedDataAvailable, R(Iir));
        Assert.False(_uart.IrqLevel); // loopback forces the OUT2 pin inactive
        Assert.Empty(_line.Levels);
        W(Mcr, McrBits.Out2); // leaving loopback opens the gate on the pending interrupt
        Assert.True(_line.Level);
    }

    [Fact]
    public void Out2GatesTheInterruptLine()
    {
        W(Ier, IerBits.ReceivedDataAvailable);
        _uart.Receive(1);
        Assert.True(_uart.InterruptPending);
        Assert.Empty(_line.Levels); // OUT2 off: the PC's buffer holds the line low
        W(Mcr, McrBits.Out2);
        Assert.Equal([true], _line.Levels);
        W(Mcr, 0);
        Assert.Equal([true, false], _line.Levels);
    }

    [Fact]
    public void ReceiveFifoIsBoundedAtSixteenAndOverrunsBeyond()
    {
        W(Fcr, FcrBits.FifoEnable);
        for (var i = 0; i < 100; i++) _uart.Receive((byte)i);
        Assert.Equal(0, _uart.ReceiveSpace);
        Assert.Equal(FifoDepth, _uart.ReceivedBytes);
        Assert.Equal(100 - FifoDepth, _uart.DroppedBytes);
        Assert.Equal(LsrBits.OverrunError | LsrBits.DataReady, R(Lsr) & (LsrBits.OverrunError | LsrBits.DataReady));
        Assert.Equal(0, R(Lsr) & LsrBits.OverrunError); // cleared by the read
        // The FIFO kept the first sixteen bytes; the rest were lost.
        for (var i = 0; i < FifoDepth; i++) Assert.Equal(i, R(Rbr));
        Assert.Equal(0, R(Lsr) & LsrBits.DataReady);
        Assert.True(_uart.Save().ReceiveFifo.Length == 0);
    }

    [Fact]
    public void WithoutFifosTheHoldingRegisterKeepsOnlyTheNewestByte()
    {
        _uart.Receive(1);
        Assert.Equal(0, _uart.ReceiveSpace);
        _uart.Receive(2);
        Assert.Equal(LsrBits.OverrunError, R(Lsr) & LsrBits.OverrunError);
        Assert.Equal(2, R(Rbr));
        Assert.Equal(0, R(Lsr) & LsrBits.DataReady);
    }

    [Fact]
    public void FcrClearsTheReceiveFifoAndModeChangesEmptyIt()
    {
        W(Fcr, FcrBits.FifoEnable);
        _uart.Receive(1);
        _uart.Receive(2);
        W(Fcr, FcrBits.FifoEnable | FcrBits.ClearReceiveFifo);
        Assert.Equal(0, R(Lsr) & LsrBits.DataReady);
        _uart.Receive(3);
        W(Fcr, 0); // back to 16450 mode
        Assert.Equal(0, R(Lsr) & LsrBits.DataReady);
        Assert.Equal(0x01, R(Iir)); // FIFO bits 6-7 read 0 again
    }

    [Fact]
    public void LsrAndMsrWritesAndReservedBitsAreIgnored()
    {
        W(Lsr, 0xFF);
        W(Msr, 0xFF);
        Assert.Equal(0x60, R(Lsr));
        Assert.Equal(ConnectedModemInputs, R(Msr));
        W(Ier, 0xFF);
        Assert.Equal(0x0F, R(Ier));
        W(Mcr, 0xFF);
        Assert.Equal(0x1F, R(Mcr));
    }

    [Fact]
    public void WideAccessesSplitIntoByteRegistersAndOffsetsPastTheEndReadOnes()
    {
        _uart.Write(Lcr, 2, 0x0B03); // LCR = 0x03, MCR = 0x0B
        Assert.Equal(0x03, R(Lcr));
        Assert.Equal(0x0B, R(Mcr));
        Assert.Equal(0x0B03UL, _uart.Read(Lcr, 2));
        Assert.Equal(0xFFUL, _uart.Read(8, 1));
        Assert.Equal(1, _uart.MissedReads);
    }

    [Fact]
    public void SaveAndRestoreKeepTheRegistersFifoAndLine()
    {
        EnableOut2();
        W(Fcr, FcrBits.FifoEnable | 0x80);
        W(Lcr, LcrBits.DivisorLatchAccess);
        W(Dll, 3);
        W(Lcr, 0x1B);
        W(Ier, IerBits.ReceivedDataAvailable);
        W(Scr, 0x5A);
        _uart.Receive(10);
        _uart.Receive(11);
        var state = _uart.Save();

        var line = new RecordingLine();
        var copy = Actorvisor.Actors.Devices.Uart.Uart.Restore(state, line);
        Assert.Equal(state, copy.Save());
        Assert.True(line.Level); // the pending receive interrupt is driven again on the new wiring
        Assert.Equal(10, copy.ReadRegister(Rbr));
        Assert.Equal(11, copy.ReadRegister(Rbr));
        Assert.Equal(0x5A, copy.ReadRegister(Scr));
        Assert.Equal(3, copy.Divisor);
        Assert.NotEqual(state, copy.Save());
    }

    [Fact]
    public void PowerOnStateIsAFreshUartAndResetReturnsToIt()
    {
        Assert.Equal(UartState.PowerOn, _uart.Save());
        EnableOut2();
        W(Ier, 0x0F);
        W(Fcr, FcrBits.FifoEnable);
        W(Lcr, 0x03);
        _uart.Receive(1);
        _uart.Reset();
        Assert.Equal(UartState.PowerOn with { LastRbr = 0 }, _uart.Save());
        Assert.False(_line.Level);
    }
}
