namespace Actorvisor.Actors.Devices.Uart;

/// <summary>
/// Register offsets and bits of the 16550A UART (National Semiconductor PC16550D datasheet, June 1995:
/// Table II "Summary of Registers" and section 8 "Registers"). A PC's COM1 sits at ports 0x3F8-0x3FF.
/// </summary>
public static class UartRegisters
{
    /// <summary>The UART decodes eight byte-wide registers (A0-A2).</summary>
    public const int RegisterCount = 8;

    // ---- offsets (Table II). Offsets 0 and 1 are the divisor latch while LCR.DLAB = 1. ----
    public const int Rbr = 0; // receiver buffer (read, DLAB=0)
    public const int Thr = 0; // transmitter holding (write, DLAB=0)
    public const int Dll = 0; // divisor latch LSB (DLAB=1)
    public const int Ier = 1; // interrupt enable (DLAB=0)
    public const int Dlm = 1; // divisor latch MSB (DLAB=1)
    public const int Iir = 2; // interrupt identification (read)
    public const int Fcr = 2; // FIFO control (write)
    public const int Lcr = 3; // line control
    public const int Mcr = 4; // modem control
    public const int Lsr = 5; // line status
    public const int Msr = 6; // modem status
    public const int Scr = 7; // scratch

    /// <summary>Interrupt Enable Register bits (8.5). Bits 4-7 are always 0.</summary>
    public static class IerBits
    {
        public const byte ReceivedDataAvailable = 0x01; // ERBFI (also enables the character timeout)
        public const byte ThrEmpty = 0x02;              // ETBEI
        public const byte ReceiverLineStatus = 0x04;    // ELSI
        public const byte ModemStatus = 0x08;           // EDSSI
        public const byte Writable = 0x0F;
    }

    /// <summary>
    /// Interrupt Identification Register (8.6, Table IV). Bit 0 is 0 while an interrupt is pending; bits 1-3
    /// name the highest-priority source; bits 6-7 read 1 when the FIFOs are enabled.
    /// </summary>
    public static class IirBits
    {
        public const byte NoInterruptPending = 0x01;
        public const byte ReceiverLineStatus = 0x06;  // priority 1: OE, PE, FE or BI
        public const byte ReceivedDataAvailable = 0x04; // priority 2: data at the trigger level
        public const byte CharacterTimeout = 0x0C;    // priority 2: data below the trigger level, FIFO mode
        public const byte ThrEmpty = 0x02;            // priority 3
        public const byte ModemStatus = 0x00;         // priority 4
        public const byte FifosEnabled = 0xC0;
    }

    /// <summary>FIFO Control Register bits (8.7). Write-only.</summary>
    public static class FcrBits
    {
        public const byte FifoEnable = 0x01;
        public const byte ClearReceiveFifo = 0x02;
        public const byte ClearTransmitFifo = 0x04;
        public const byte DmaModeSelect = 0x08;
        public const byte TriggerMask = 0xC0; // RX trigger: 00=1, 01=4, 10=8, 11=14 bytes
    }

    /// <summary>Line Control Register bits (8.1).</summary>
    public static class LcrBits
    {
        public const byte WordLengthMask = 0x03;
        public const byte StopBits = 0x04;
        public const byte ParityEnable = 0x08;
        public const byte EvenParity = 0x10;
        public const byte StickParity = 0x20;
        public const byte SetBreak = 0x40;
        public const byte DivisorLatchAccess = 0x80; // DLAB
    }

    /// <summary>Modem Control Register bits (8.8). Bits 5-7 are always 0.</summary>
    public static class McrBits
    {
        public const byte Dtr = 0x01;
        public const byte Rts = 0x02;
        public const byte Out1 = 0x04;
        /// <summary>On a PC, OUT2 enables the buffer between the UART's INTR pin and the interrupt controller.</summary>
        public const byte Out2 = 0x08;
        public const byte Loopback = 0x10;
        public const byte Writable = 0x1F;
    }

    /// <summary>Line Status Register bits (8.4).</summary>
    public static class LsrBits
    {
        public const byte DataReady = 0x01;
        public const byte OverrunError = 0x02;
        public const byte ParityError = 0x04;
        public const byte FramingError = 0x08;
        public const byte BreakInterrupt = 0x10;
        public const byte ThrEmpty = 0x20;
        public const byte TransmitterEmpty = 0x40;
        public const byte ErrorInReceiveFifo = 0x80;
        /// <summary>The bits whose setting raises a receiver line status interrupt, cleared by reading LSR.</summary>
        public const byte LineErrors = OverrunError | ParityError | FramingError | BreakInterrupt;
    }

    /// <summary>Modem Status Register bits (8.9): deltas in bits 0-3 (cleared by reading MSR), lines in 4-7.</summary>
    public static class MsrBits
    {
        public const byte DeltaCts = 0x01;
        public const byte DeltaDsr = 0x02;
        public const byte TrailingEdgeRi = 0x04;
        public const byte DeltaDcd = 0x08;
        public const byte Cts = 0x10;
        public const byte Dsr = 0x20;
        public const byte Ri = 0x40;
        public const byte Dcd = 0x80;
        public const byte Deltas = 0x0F;
    }

    /// <summary>Depth of the 16550A's transmit and receive FIFOs (section 1, features).</summary>
    public const int FifoDepth = 16;

    /// <summary>
    /// Divisor after power-on: the datasheet leaves the latch undefined; 12 is 9600 baud from the PC's
    /// 1.8432 MHz crystal, what a PC BIOS programs.
    /// </summary>
    public const ushort PowerOnDivisor = 12;

    /// <summary>
    /// The modem inputs of a serial line with a live peer (a terminal): CTS, DSR and DCD asserted, RI not.
    /// </summary>
    public const byte ConnectedModemInputs = MsrBits.Cts | MsrBits.Dsr | MsrBits.Dcd;

    /// <summary>Line status after reset (Table III, "Master Reset"): transmitter empty.</summary>
    public const byte PowerOnLsr = LsrBits.ThrEmpty | LsrBits.TransmitterEmpty;
}
