namespace Actorvisor.Actors.Devices.Rtc;

/// <summary>
/// The MC146818A real-time clock and CMOS RAM as a PC wires it (Motorola MC146818A datasheet; the extended
/// bank and the memory-size bytes as QEMU's mc146818rtc and pc.c and SeaBIOS read them).
/// Ports: 0x70 index (bit 7 disables NMI), 0x71 data; 0x72/0x73 the same for the second 128-byte bank.
/// </summary>
public static class RtcRegisters
{
    public const ushort IoBase = 0x70;
    public const ushort IoSize = 4;
    public const int IndexPort = 0, DataPort = 1, ExtendedIndexPort = 2, ExtendedDataPort = 3;
    public const byte NmiDisable = 0x80;
    public const byte IndexMask = 0x7F;
    public const int BankSize = 128;

    // Time, alarm and control registers (datasheet "Address Map").
    public const int Seconds = 0x00, SecondsAlarm = 0x01, Minutes = 0x02, MinutesAlarm = 0x03;
    public const int Hours = 0x04, HoursAlarm = 0x05, DayOfWeek = 0x06, DayOfMonth = 0x07, Month = 0x08, Year = 0x09;
    public const int RegisterA = 0x0A, RegisterB = 0x0B, RegisterC = 0x0C, RegisterD = 0x0D;
    /// <summary>First of the 114 bytes of general-purpose RAM in bank 0 (0x0E-0x7F).</summary>
    public const int FirstRamByte = 0x0E;
    /// <summary>The century, kept by PC BIOSes in CMOS RAM; here part of the clock (same encoding as the year).</summary>
    public const int Century = 0x32;

    /// <summary>Hours in 12-hour mode: bit 7 is PM.</summary>
    public const byte HourPm = 0x80;
    /// <summary>An alarm byte with both top bits set matches every value ("don't care").</summary>
    public const byte AlarmDontCare = 0xC0;

    // Register A.
    public const byte AUpdateInProgress = 0x80;
    public const byte ADividerMask = 0x70;
    /// <summary>DV2-DV0 = 010: the 32.768 kHz time base, oscillator on.</summary>
    public const byte ADividerNormal = 0x20;
    /// <summary>DV2-DV1 = 11: the divider chain held in reset (Linux sets this while it writes the time).</summary>
    public const byte ADividerReset = 0x60;
    public const byte ARateMask = 0x0F;
    /// <summary>UIP is set this long before each update (tBUC).</summary>
    public const long UpdateInProgressMicroseconds = 244;
    public const long TimeBaseHz = 32768;

    // Register B.
    public const byte BSet = 0x80;
    public const byte BPeriodicInterruptEnable = 0x40;
    public const byte BAlarmInterruptEnable = 0x20;
    public const byte BUpdateEndedInterruptEnable = 0x10;
    public const byte BSquareWaveEnable = 0x08;
    /// <summary>DM: 1 = binary, 0 = BCD.</summary>
    public const byte BBinary = 0x04;
    /// <summary>1 = 24-hour mode, 0 = 12-hour mode with the PM bit.</summary>
    public const byte B24Hour = 0x02;
    public const byte BDaylightSavings = 0x01;

    // Register C (read-only, cleared by reading).
    public const byte CInterruptRequest = 0x80;
    public const byte CPeriodic = 0x40;
    public const byte CAlarm = 0x20;
    public const byte CUpdateEnded = 0x10;

    // Register D.
    public const byte DValidRamAndTime = 0x80;

    /// <summary>Register A and B as a PC BIOS leaves them (QEMU's values): 32.768 kHz, 1024 Hz rate; BCD, 24-hour.</summary>
    public const byte PowerOnA = 0x26;
    public const byte PowerOnB = 0x02;

    // Memory-size bytes (IBM AT CMOS map; QEMU pc.c, SeaBIOS).
    public const int BaseMemoryLow = 0x15, BaseMemoryHigh = 0x16;
    public const int ExtendedMemoryLow = 0x17, ExtendedMemoryHigh = 0x18;
    public const int ExtendedMemoryLow2 = 0x30, ExtendedMemoryHigh2 = 0x31;
    public const int MemoryAbove16MLow = 0x34, MemoryAbove16MHigh = 0x35;
    public const int MemoryAbove4G = 0x5B; // three bytes, 0x5B-0x5D
    public const int CpuCountMinusOne = 0x5F;
}
