namespace Actorvisor.Actors.Devices.I8042;

/// <summary>
/// The PC's 8042 keyboard controller (IBM PC AT technical reference, "Keyboard Controller"; the command set
/// Linux's drivers/input/serio/i8042.h and atkbd.c use). Ports: 0x60 data, 0x64 status (read) / command (write).
/// </summary>
public static class I8042Registers
{
    public const ushort DataPort = 0x60;
    public const ushort CommandPort = 0x64;

    // Status register.
    public const byte StatusOutputFull = 0x01;
    public const byte StatusInputFull = 0x02;
    public const byte StatusSystemFlag = 0x04;
    /// <summary>The last write was to the command port.</summary>
    public const byte StatusCommand = 0x08;
    /// <summary>1 = keyboard not inhibited (keylock off).</summary>
    public const byte StatusNotInhibited = 0x10;
    /// <summary>The output byte came from the auxiliary (mouse) port.</summary>
    public const byte StatusAuxOutputFull = 0x20;
    public const byte StatusTimeout = 0x40;
    public const byte StatusParityError = 0x80;

    // Controller configuration ("command byte").
    public const byte ConfigKeyboardInterrupt = 0x01;
    public const byte ConfigAuxInterrupt = 0x02;
    public const byte ConfigSystemFlag = 0x04;
    public const byte ConfigKeyboardDisabled = 0x10;
    public const byte ConfigAuxDisabled = 0x20;
    public const byte ConfigTranslate = 0x40;
    /// <summary>What a BIOS leaves: keyboard interrupt on, POST passed, translation on.</summary>
    public const byte PowerOnConfig = ConfigKeyboardInterrupt | ConfigSystemFlag | ConfigTranslate;

    // Controller commands (written to 0x64).
    public const byte CmdReadConfig = 0x20;       // 0x20-0x3F: read internal RAM byte n (0 = config)
    public const byte CmdWriteConfig = 0x60;      // 0x60-0x7F: write internal RAM byte n
    public const byte CmdDisableAux = 0xA7;
    public const byte CmdEnableAux = 0xA8;
    public const byte CmdTestAux = 0xA9;
    public const byte CmdSelfTest = 0xAA;
    public const byte CmdTestKeyboard = 0xAB;
    public const byte CmdDisableKeyboard = 0xAD;
    public const byte CmdEnableKeyboard = 0xAE;
    public const byte CmdReadOutputPort = 0xD0;
    public const byte CmdWriteOutputPort = 0xD1;
    public const byte CmdWriteKeyboardOutput = 0xD2;
    public const byte CmdWriteAuxOutput = 0xD3;
    public const byte CmdWriteAux = 0xD4;
    public const byte CmdDisableA20 = 0xDD;
    public const byte CmdEnableA20 = 0xDF;
    /// <summary>0xF0-0xFF pulse the output-port bits whose bit in the low nibble is 0; 0xFE pulses the reset line.</summary>
    public const byte CmdPulseBase = 0xF0;
    public const byte CmdPulseReset = 0xFE;

    public const byte SelfTestPassed = 0x55;
    public const byte InterfaceTestPassed = 0x00;

    // Output port.
    /// <summary>Active low: 0 holds the CPU in reset.</summary>
    public const byte OutputPortReset = 0x01;
    public const byte OutputPortA20 = 0x02;
    public const byte OutputPortKeyboardFull = 0x10;
    public const byte OutputPortAuxFull = 0x20;

    // Keyboard commands (written to 0x60) and replies.
    public const byte KbdSetLeds = 0xED;
    public const byte KbdEcho = 0xEE;
    public const byte KbdScanCodeSet = 0xF0;
    public const byte KbdIdentify = 0xF2;
    public const byte KbdTypematic = 0xF3;
    public const byte KbdEnable = 0xF4;
    public const byte KbdDisable = 0xF5;
    public const byte KbdSetDefaults = 0xF6;
    public const byte KbdResend = 0xFE;
    public const byte KbdReset = 0xFF;
    public const byte KbdAck = 0xFA;
    public const byte KbdSelfTestPassed = 0xAA;
    /// <summary>An MF2 keyboard's identity: 0xAB 0x83.</summary>
    public const byte KbdId1 = 0xAB, KbdId2 = 0x83;

    /// <summary>Bytes the controller holds for the guest at most (the chip holds one; ours queues a reply's bytes).</summary>
    public const int OutputQueueDepth = 16;
}
