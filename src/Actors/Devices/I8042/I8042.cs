using static Actorvisor.Actors.Devices.I8042.I8042Registers;

namespace Actorvisor.Actors.Devices.I8042;

/// <summary>
/// An 8042 keyboard controller with an MF2 keyboard that never types, and no mouse: just enough for an
/// OS to probe it, program it and reset the machine through it. A plain model. The guest reads replies
/// from a short output queue (bounded: a guest that never reads cannot grow it); IRQ 1 is high while a
/// keyboard byte waits and the config enables it, IRQ 12 likewise for the aux port (loopback bytes only).
/// <see cref="WriteCommand"/> and <see cref="WriteData"/> return true when the guest pulsed the CPU reset
/// line (0xFE, or an output-port write with bit 0 clear). The A20 bit is stored and reported; the CPU does
/// not mask address line 20 (nothing after DOS relies on the wrap).
/// </summary>
public sealed class I8042
{
    private readonly IIrqLine _irq1, _irq12;
    private readonly Queue<(byte Value, bool Aux)> _output = new();
    private readonly byte[] _ram = new byte[32];
    private byte _outputPort = OutputPortReset | OutputPortA20;
    private byte _status = StatusNotInhibited;
    /// <summary>A controller command waiting for its data byte at 0x60.</summary>
    private byte? _pendingCommand;
    /// <summary>A keyboard command waiting for its parameter byte.</summary>
    private byte? _pendingKeyboardCommand;
    private bool _irq1Level, _irq12Level;

    public I8042(IIrqLine? irq1 = null, IIrqLine? irq12 = null)
    {
        _irq1 = irq1 ?? NoIrqLine.Instance;
        _irq12 = irq12 ?? NoIrqLine.Instance;
        _ram[0] = PowerOnConfig;
    }

    public byte Config => _ram[0];
    public bool A20Enabled => (_outputPort & OutputPortA20) != 0;
    public bool KeyboardScanning { get; private set; } = true;
    public byte ScanCodeSet { get; private set; } = 2;
    public byte Leds { get; private set; }
    public long UnknownCommands { get; private set; }
    public long DroppedBytes { get; private set; }
    public bool Irq1Level => _irq1Level;

    // ---- ports ----

    public byte ReadStatus()
    {
        var s = (byte)(_status & ~(StatusOutputFull | StatusAuxOutputFull | StatusSystemFlag));
        if (_output.Count > 0)
        {
            s |= StatusOutputFull;
            if (_output.Peek().Aux) s |= StatusAuxOutputFull;
        }
        if ((Config & ConfigSystemFlag) != 0) s |= StatusSystemFlag;
        return s;
    }

    public byte ReadData()
    {
        // An empty buffer reads its last byte again on hardware; 0 is as good for a guest that did not check OBF.
        var value = _output.Count > 0 ? _output.Dequeue().Value : (byte)0;
        // The chip holds one byte: the next one arrives after this read, as a new edge on the line.
        Drive(ref _irq1Level, _irq1, false);
        Drive(ref _irq12Level, _irq12, false);
        UpdateLines();
        return value;
    }

    /// <summary>A write to 0x64. Returns true if it resets the machine.</summary>
    public bool WriteCommand(byte command)
    {
        _status |= StatusCommand;
        _pendingCommand = null;
        switch (command)
        {
            case >= CmdReadConfig and < CmdReadConfig + 0x20:
                Put(_ram[command - CmdReadConfig], aux: false);
                break;
            case >= CmdWriteConfig and < CmdWriteConfig + 0x20:
            case CmdWriteOutputPort or CmdWriteKeyboardOutput or CmdWriteAuxOutput or CmdWriteAux:
                _pendingCommand = command;
                break;
            case CmdDisableAux: SetConfig((byte)(Config | ConfigAuxDisabled)); break;
            case CmdEnableAux: SetConfig((byte)(Config & ~ConfigAuxDisabled)); break;
            case CmdTestAux: Put(InterfaceTestPassed, aux: false); break;
            case CmdSelfTest:
                SetConfig((byte)(Config | ConfigSystemFlag));
                Put(SelfTestPassed, aux: false);
                break;
            case CmdTestKeyboard: Put(InterfaceTestPassed, aux: false); break;
            case CmdDisableKeyboard: SetConfig((byte)(Config | ConfigKeyboardDisabled)); break;
            case CmdEnableKeyboard: SetConfig((byte)(Config & ~ConfigKeyboardDisabled)); break;
            case CmdReadOutputPort:
                var port = _outputPort;
                if (_output.Count > 0) port |= _output.Peek().Aux ? OutputPortAuxFull : OutputPortKeyboardFull;
                Put(port, aux: false);
                break;
            case CmdDisableA20: _outputPort &= unchecked((byte)~OutputPortA20); break;
            case CmdEnableA20: _outputPort |= OutputPortA20; break;
            case >= CmdPulseBase:
                // Bits clear in the low nibble are pulsed low for 6 µs; bit 0 is the CPU's reset line.
                return (command & OutputPortReset) == 0;
            default:
                UnknownCommands++;
                break;
        }
        return false;
    }

    /// <summary>A write to 0x60: a controller command's data byte, or a byte for the keyboard. Returns true if it resets the machine.</summary>
    public bool WriteData(byte value)
    {
        _status &= unchecked((byte)~StatusCommand);
        if (_pendingCommand is { } command)
        {
            _pendingCommand = null;
            switch (command)
            {
                case >= CmdWriteConfig and < CmdWriteConfig + 0x20:
                    if (command == CmdWriteConfig) SetConfig(value);
                    else _ram[command - CmdWriteConfig] = value;
                    return false;
                case CmdWriteOutputPort:
                    _outputPort = (byte)(value & ~(OutputPortKeyboardFull | OutputPortAuxFull));
                    return (value & OutputPortReset) == 0;
                case CmdWriteKeyboardOutput:
                    Put(value, aux: false);
                    return false;
                case CmdWriteAuxOutput:
                    Put(value, aux: true);
                    return false;
                case CmdWriteAux:
                    return false; // no mouse: the byte goes nowhere and the guest's wait for an answer times out
            }
        }
        Keyboard(value);
        return false;
    }

    // ---- the keyboard ----

    private void Keyboard(byte value)
    {
        if (_pendingKeyboardCommand is { } pending)
        {
            _pendingKeyboardCommand = null;
            switch (pending)
            {
                case KbdSetLeds: Leds = (byte)(value & 7); Put(KbdAck, aux: false); return;
                case KbdTypematic: Put(KbdAck, aux: false); return;
                case KbdScanCodeSet:
                    Put(KbdAck, aux: false);
                    if (value == 0) Put(ScanCodeSet, aux: false);
                    else if (value is >= 1 and <= 3) ScanCodeSet = value;
                    return;
            }
        }
        switch (value)
        {
            case KbdSetLeds or KbdTypematic or KbdScanCodeSet:
                _pendingKeyboardCommand = value;
                Put(KbdAck, aux: false);
                break;
            case KbdEcho: Put(KbdEcho, aux: false); break;
            case KbdIdentify:
                Put(KbdAck, aux: false);
                Put(KbdId1, aux: false);
                Put(KbdId2, aux: false);
                break;
            case KbdEnable: KeyboardScanning = true; Put(KbdAck, aux: false); break;
            case KbdDisable: KeyboardScanning = false; Put(KbdAck, aux: false); break;
            case KbdSetDefaults: ScanCodeSet = 2; Put(KbdAck, aux: false); break;
            case KbdReset:
                KeyboardScanning = true;
                ScanCodeSet = 2;
                Leds = 0;
                Put(KbdAck, aux: false);
                Put(KbdSelfTestPassed, aux: false);
                break;
            case >= 0xF7 and <= 0xFD: Put(KbdAck, aux: false); break;
            case KbdResend: Put(KbdAck, aux: false); break;
            default: Put(KbdResend, aux: false); break; // not a command: "resend"
        }
    }

    // ---- output buffer and interrupt lines ----

    private void Put(byte value, bool aux)
    {
        if (_output.Count >= OutputQueueDepth)
        {
            DroppedBytes++;
            return;
        }
        _output.Enqueue((value, aux));
        UpdateLines();
    }

    private void SetConfig(byte value)
    {
        _ram[0] = value;
        UpdateLines();
    }

    private void UpdateLines()
    {
        var has = _output.Count > 0;
        var aux = has && _output.Peek().Aux;
        Drive(ref _irq1Level, _irq1, has && !aux && (Config & ConfigKeyboardInterrupt) != 0);
        Drive(ref _irq12Level, _irq12, has && aux && (Config & ConfigAuxInterrupt) != 0);
    }

    private static void Drive(ref bool current, IIrqLine line, bool level)
    {
        if (current == level) return;
        current = level;
        line.Set(level);
    }

    /// <summary>Back to power-on state (a VM reset).</summary>
    public void Reset()
    {
        _output.Clear();
        Array.Clear(_ram);
        _ram[0] = PowerOnConfig;
        _outputPort = OutputPortReset | OutputPortA20;
        _status = StatusNotInhibited;
        _pendingCommand = _pendingKeyboardCommand = null;
        KeyboardScanning = true;
        ScanCodeSet = 2;
        Leds = 0;
        UpdateLines();
    }
}
