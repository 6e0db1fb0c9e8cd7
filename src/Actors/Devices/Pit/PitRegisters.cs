namespace Actorvisor.Actors.Devices.Pit;

/// <summary>
/// The 8254 programmable interval timer as a PC wires it (Intel 8254 datasheet, order no. 231164; IBM PC
/// AT technical reference for port 0x61): counters at 0x40-0x42, the control word at 0x43, 1.193182 MHz
/// input clock, counter 0's OUT on IRQ 0, counter 2's GATE and OUT on system control port B (0x61).
/// </summary>
public static class PitRegisters
{
    public const ushort IoBase = 0x40;
    public const ushort IoSize = 4;
    /// <summary>System control port B (keyboard controller "port B" on the AT).</summary>
    public const ushort PortB = 0x61;

    /// <summary>CLK input of every counter: the PC's 14.31818 MHz crystal divided by 12.</summary>
    public const long ClockHz = 1_193_182;

    // Offsets inside 0x40-0x43.
    public const int Counter0 = 0, Counter1 = 1, Counter2 = 2, ControlWord = 3;

    // Control word (datasheet "Control Word Format").
    public const int SelectShift = 6;      // SC1-SC0: counter, or 3 = read-back
    public const int SelectReadBack = 3;
    public const int AccessShift = 4;      // RW1-RW0
    public const byte AccessMask = 0x30;
    public const int ModeShift = 1;        // M2-M0
    public const byte ModeMask = 0x0E;
    public const byte Bcd = 0x01;

    /// <summary>RW1-RW0: 0 is the counter-latch command, the rest select how the count is accessed.</summary>
    public enum Access : byte { Latch = 0, Lsb = 1, Msb = 2, LsbThenMsb = 3 }

    // Read-back command (datasheet "Read-Back Command"): the bits are active low.
    public const byte ReadBackNoCount = 0x20;
    public const byte ReadBackNoStatus = 0x10;
    /// <summary>Bit 1 selects counter 0, bit 2 counter 1, bit 3 counter 2.</summary>
    public const int ReadBackCounterShift = 1;

    // Status byte (datasheet "Status Byte").
    public const byte StatusOutput = 0x80;
    public const byte StatusNullCount = 0x40;

    // Port B.
    public const byte PortBGate2 = 0x01;
    public const byte PortBSpeakerData = 0x02;
    /// <summary>Parity and channel-check enables (bits 2-3): stored only.</summary>
    public const byte PortBWritable = 0x0F;
    /// <summary>Toggles with each DRAM refresh request, every 15.085 µs (18 PIT clocks); BIOS delay loops count it.</summary>
    public const byte PortBRefreshToggle = 0x10;
    public const long RefreshPeriodTicks = 18;
    public const byte PortBOut2 = 0x20;
}
