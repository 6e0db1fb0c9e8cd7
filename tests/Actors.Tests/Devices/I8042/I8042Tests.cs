using Actorvisor.Actors.Devices.I8042;
using Actorvisor.Actors.Devices.ResetControl;
using static Actorvisor.Actors.Devices.I8042.I8042Registers;

namespace Actorvisor.Actors.Tests.Devices.I8042;

/// <summary>The keyboard controller by command sequences, as Linux's i8042 and atkbd drivers send them.</summary>
public class I8042Tests
{
    private readonly RecordingIrqLine _irq1 = new();
    private readonly RecordingIrqLine _irq12 = new();
    private readonly Actorvisor.Actors.Devices.I8042.I8042 _kbc;

    public I8042Tests() => _kbc = new Actorvisor.Actors.Devices.I8042.I8042(_irq1, _irq12);

    private List<byte> Drain()
    {
        var bytes = new List<byte>();
        while ((_kbc.ReadStatus() & StatusOutputFull) != 0) bytes.Add(_kbc.ReadData());
        return bytes;
    }

    [Fact]
    public void PowerOnStatusIsEmptyAndNotInhibited()
    {
        Assert.Equal(StatusNotInhibited | StatusSystemFlag, _kbc.ReadStatus());
        Assert.Equal(PowerOnConfig, _kbc.Config);
    }

    [Fact]
    public void SelfTestAnswers55AndInterfaceTestsAnswer00()
    {
        _kbc.WriteCommand(CmdSelfTest);
        Assert.Equal(StatusOutputFull, _kbc.ReadStatus() & StatusOutputFull);
        Assert.Equal(StatusCommand, _kbc.ReadStatus() & StatusCommand);
        Assert.Equal([0x55], Drain());
        _kbc.WriteCommand(CmdTestKeyboard);
        _kbc.WriteCommand(CmdTestAux);
        Assert.Equal([0x00, 0x00], Drain());
    }

    [Fact]
    public void CommandByteReadsAndWritesThrough20And60()
    {
        _kbc.WriteCommand(CmdReadConfig);
        Assert.Equal([PowerOnConfig], Drain());
        _kbc.WriteCommand(CmdWriteConfig);
        _kbc.WriteData(0x47);
        Assert.Equal(0x47, _kbc.Config);
        Assert.Equal(0, _kbc.ReadStatus() & StatusCommand); // the last write went to the data port
        _kbc.WriteCommand(CmdReadConfig);
        Assert.Equal([0x47], Drain());
    }

    [Fact]
    public void DisableAndEnablePortsFlipTheConfigBits()
    {
        _kbc.WriteCommand(CmdDisableKeyboard);
        _kbc.WriteCommand(CmdDisableAux);
        Assert.Equal(PowerOnConfig | ConfigKeyboardDisabled | ConfigAuxDisabled, _kbc.Config);
        _kbc.WriteCommand(CmdEnableKeyboard);
        _kbc.WriteCommand(CmdEnableAux);
        Assert.Equal(PowerOnConfig, _kbc.Config);
    }

    [Fact]
    public void KeyboardResetAnswersAckThenSelfTestPassedEachAsItsOwnIrq1Edge()
    {
        _kbc.WriteData(KbdReset);
        Assert.True(_irq1.Level);
        Assert.Equal(KbdAck, _kbc.ReadData());
        Assert.True(_irq1.Level);            // the next byte arrives: low, then high again
        Assert.Equal(2, _irq1.Rises);
        Assert.Equal(KbdSelfTestPassed, _kbc.ReadData());
        Assert.False(_irq1.Level);
        Assert.Equal(0, _kbc.ReadStatus() & StatusOutputFull);
    }

    [Fact]
    public void IdentifyAnswersAnMf2Keyboard()
    {
        _kbc.WriteData(KbdIdentify);
        Assert.Equal([KbdAck, KbdId1, KbdId2], Drain());
    }

    [Fact]
    public void CommandsWithAParameterAckBoth()
    {
        _kbc.WriteData(KbdSetLeds);
        _kbc.WriteData(0x07);
        _kbc.WriteData(KbdScanCodeSet);
        _kbc.WriteData(0x00);                // query
        _kbc.WriteData(KbdEcho);
        _kbc.WriteData(KbdDisable);
        Assert.Equal([KbdAck, KbdAck, KbdAck, KbdAck, 0x02, KbdEcho, KbdAck], Drain());
        Assert.Equal(7, _kbc.Leds);
        Assert.False(_kbc.KeyboardScanning);
    }

    [Fact]
    public void NoIrq1WhenTheConfigDisablesIt()
    {
        _kbc.WriteCommand(CmdWriteConfig);
        _kbc.WriteData(ConfigSystemFlag);
        _kbc.WriteData(KbdIdentify);
        Assert.False(_irq1.Level);
        Assert.Equal(StatusOutputFull, _kbc.ReadStatus() & StatusOutputFull);
    }

    [Fact]
    public void AuxLoopbackByteSetsAuxFullAndIrq12()
    {
        _kbc.WriteCommand(CmdWriteConfig);
        _kbc.WriteData(PowerOnConfig | ConfigAuxInterrupt);
        _kbc.WriteCommand(CmdWriteAuxOutput);
        _kbc.WriteData(0x5A);
        Assert.Equal(StatusOutputFull | StatusAuxOutputFull, _kbc.ReadStatus() & (StatusOutputFull | StatusAuxOutputFull));
        Assert.True(_irq12.Level);
        Assert.False(_irq1.Level);
        Assert.Equal(0x5A, _kbc.ReadData());
        Assert.False(_irq12.Level);
    }

    [Fact]
    public void PulseResetCommandRequestsAReset()
    {
        Assert.False(_kbc.WriteCommand(0xFF)); // pulses nothing
        Assert.True(_kbc.WriteCommand(CmdPulseReset));
    }

    [Fact]
    public void OutputPortWriteWithBit0ClearResetsAndA20IsReported()
    {
        _kbc.WriteCommand(CmdWriteOutputPort);
        Assert.False(_kbc.WriteData(OutputPortReset));   // A20 off, not in reset
        Assert.False(_kbc.A20Enabled);
        _kbc.WriteCommand(CmdReadOutputPort);
        Assert.Equal([OutputPortReset], Drain());
        _kbc.WriteCommand(CmdEnableA20);
        Assert.True(_kbc.A20Enabled);
        _kbc.WriteCommand(CmdWriteOutputPort);
        Assert.True(_kbc.WriteData(OutputPortA20));      // reset line driven low
    }

    [Fact]
    public void OutputQueueIsBounded()
    {
        for (var i = 0; i < 20; i++) _kbc.WriteData(KbdIdentify);
        Assert.Equal(OutputQueueDepth, Drain().Count);
        Assert.Equal(60 - OutputQueueDepth, _kbc.DroppedBytes);
    }

    [Theory]
    [InlineData(0x06, true)]
    [InlineData(0x0E, true)]
    [InlineData(0x02, false)]
    [InlineData(0x00, false)]
    public void ResetControlRegisterResetsOnRstCpu(byte value, bool resets)
    {
        var rc = new ResetControl();
        Assert.Equal(resets, rc.Write(value));
        Assert.Equal(value & 0x0A, rc.Read());
    }
}
