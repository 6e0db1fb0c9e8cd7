using Actorvisor.Kernel.Boot;

namespace Actorvisor.Actors.Devices.AcpiPm;

/// <summary>
/// The ACPI fixed hardware registers of a PC's power-management block (ACPI 6.3, 4.8.3 "Fixed Hardware
/// Registers"), at the offsets of the Intel PIIX4's PM I/O space (PIIX4 datasheet 7.2, "Power Management
/// I/O Space", 64 bytes at PMBA), which QEMU places at 0x600: PM1a status and enable (the PM1a event block),
/// PM1a control, and the PM timer. The FADT points at the same ports (<see cref="AcpiPmPorts.Piix4"/>).
/// </summary>
public static class AcpiPmRegisters
{
    public const ushort IoBase = 0x600;
    public const ushort IoSize = 0x40;

    // Offsets inside the block (PIIX4 PMSTS/PMEN/PMCNTRL/PMTMR).
    public const int Pm1StatusOffset = 0x00, Pm1EnableOffset = 0x02, Pm1ControlOffset = 0x04, PmTimerOffset = 0x08;
    /// <summary>The bytes that hold registers; the rest of the 64-byte block reads 0 and ignores writes.</summary>
    public const int ImplementedBytes = 0x0C;

    // PM1 Status (Table 4-16): write 1 to clear.
    public const ushort TmrSts = 1 << 0;
    public const ushort BmSts = 1 << 4;
    public const ushort GblSts = 1 << 5;
    public const ushort PwrBtnSts = 1 << 8;
    public const ushort SlpBtnSts = 1 << 9;
    public const ushort RtcSts = 1 << 10;
    public const ushort PciExpWakeSts = 1 << 14;
    public const ushort WakSts = 1 << 15;

    // PM1 Enable (Table 4-17). PCIEXP_WAKE_DIS is stored and has no effect here.
    public const ushort TmrEn = 1 << 0;
    public const ushort GblEn = 1 << 5;
    public const ushort PwrBtnEn = 1 << 8;
    public const ushort SlpBtnEn = 1 << 9;
    public const ushort RtcEn = 1 << 10;
    public const ushort PciExpWakeDis = 1 << 14;
    public const ushort EnableWritable = TmrEn | GblEn | PwrBtnEn | SlpBtnEn | RtcEn | PciExpWakeDis;
    /// <summary>Status bits that raise the SCI when their enable bit (the same bit position) is set.</summary>
    public const ushort SciSources = TmrSts | GblSts | PwrBtnSts | SlpBtnSts | RtcSts;

    // PM1 Control (Table 4-18).
    /// <summary>SCI_EN: reads 1 always. There is no SMI_CMD (FADT SMI_CMD = 0): the machine is born in ACPI mode.</summary>
    public const ushort SciEn = 1 << 0;
    public const ushort BmRld = 1 << 1;
    /// <summary>GBL_RLS: write-only, raises an SMI for firmware's global lock; there is no SMM firmware, so it is dropped.</summary>
    public const ushort GblRls = 1 << 2;
    public const int SlpTypShift = 10;
    public const ushort SlpTypMask = 7 << SlpTypShift;
    /// <summary>SLP_EN: write-only; writing 1 enters the sleep state SLP_TYP names.</summary>
    public const ushort SlpEn = 1 << 13;
    public const ushort ControlStored = BmRld | SlpTypMask;

    /// <summary>The SLP_TYP the DSDT's \_S5 names: soft off.</summary>
    public const byte S5SleepType = PlatformDescription.DefaultS5SleepType;

    /// <summary>The PM timer's rate: 3.579545 MHz (ACPI 6.3, 4.8.3.3), 24 bits wide (FADT TMR_VAL_EXT clear).</summary>
    public const long TimerHz = 3_579_545;
    public const int TimerBits = 24;
    public const uint TimerMask = (1u << TimerBits) - 1;
    /// <summary>TMR_STS is set each time bit 23 of the counter changes: every 2^23 ticks (about 2.34 s).</summary>
    public const int TimerCarryBit = TimerBits - 1;
}
