namespace Actorvisor.Actors.Devices.Pic;

/// <summary>
/// The PC's two 8259A PICs and the ELCR (Intel 8259A datasheet, "Programming the 8259A"; ELCR as on the
/// PIIX/ICH: 4D0h/4D1h). Offsets are inside each chip's two-port range.
/// </summary>
public static class PicRegisters
{
    public const ushort MasterPort = 0x20, SlavePort = 0xA0, ElcrPort = 0x4D0;
    public const ushort PortCount = 2, ElcrCount = 2;

    /// <summary>A0 = 0: ICW1, OCW2, OCW3 on write; IRR/ISR (or poll word) on read.</summary>
    public const int CommandOffset = 0;
    /// <summary>A0 = 1: ICW2-ICW4 during initialization, else OCW1 (IMR); IMR on read.</summary>
    public const int DataOffset = 1;

    /// <summary>The master's IR input the slave's INT output drives.</summary>
    public const int CascadeIrq = 2;

    // ICW1 (A0 = 0, D4 = 1)
    public const byte Icw1Select = 0x10;
    public const byte Icw1Ic4 = 0x01;   // ICW4 needed
    public const byte Icw1Sngl = 0x02;  // single (no ICW3)
    public const byte Icw1Ltim = 0x08;  // level-triggered mode for all inputs

    // ICW4
    public const byte Icw4Aeoi = 0x02;  // automatic EOI
    public const byte Icw4Sfnm = 0x10;  // special fully nested mode

    // OCW2 (A0 = 0, D4:D3 = 00): R SL EOI in D7:D5, level in D2:D0
    public const byte Ocw2NonSpecificEoi = 0x20;
    public const byte Ocw2SpecificEoi = 0x60;
    public const byte Ocw2RotateNonSpecificEoi = 0xA0;
    public const byte Ocw2SetRotateAeoi = 0x80;
    public const byte Ocw2ClearRotateAeoi = 0x00;
    public const byte Ocw2RotateSpecificEoi = 0xE0;
    public const byte Ocw2SetPriority = 0xC0;

    // OCW3 (A0 = 0, D4:D3 = 01)
    public const byte Ocw3Select = 0x08;
    public const byte Ocw3Ris = 0x01;   // read ISR (else IRR) when RR
    public const byte Ocw3Rr = 0x02;    // act on RIS
    public const byte Ocw3Poll = 0x04;
    public const byte Ocw3Smm = 0x20;   // special mask mode value when ESMM
    public const byte Ocw3Esmm = 0x40;

    /// <summary>ELCR bits that must stay edge: IRQ 0, 1, 2 (master) and IRQ 8, 13 (slave).</summary>
    public const byte ElcrMasterWritable = 0xF8, ElcrSlaveWritable = 0xDE;

    /// <summary>Poll word: D7 set when an interrupt was pending, D2:D0 its level.</summary>
    public const byte PollInterrupt = 0x80;
}
