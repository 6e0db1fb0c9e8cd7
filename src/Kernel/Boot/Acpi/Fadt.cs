namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// The Fixed ACPI Description Table, revision 6 (ACPI 6.3, 5.2.9, Table 5-34): a PC with the fixed hardware
/// (not hardware-reduced): the PM1a event and control blocks and the 24-bit PM timer in port space, both
/// as 32-bit legacy fields and as X_ Generic Address Structures, the SCI's ISA IRQ, the reset register,
/// and the legacy-device flags Linux reads to probe the i8042, VGA and the RTC.
/// </summary>
public static class Fadt
{
    public const byte Revision = 6, MinorVersion = 3;
    public const int Length = 276;

    // Field offsets used by readers (tests) of the table.
    public const int FirmwareCtrlOffset = 36, DsdtOffset = 40, SciIntOffset = 46, SmiCmdOffset = 48;
    public const int Pm1aEventOffset = 56, Pm1aControlOffset = 64, PmTimerOffset = 76;
    public const int CenturyOffset = 108, BootArchOffset = 109, FlagsOffset = 112, ResetRegOffset = 116, ResetValueOffset = 128;
    public const int XDsdtOffset = 140, XPm1aEventOffset = 148, XPm1aControlOffset = 172, XPmTimerOffset = 208;

    // IAPC_BOOT_ARCH (Table 5-35).
    public const ushort BootArchLegacyDevices = 1 << 0, BootArch8042 = 1 << 1, BootArchNoVga = 1 << 2;

    // Flags (Table 5-35 "Fixed ACPI Description Table Fixed Feature Flags").
    public const uint FlagWbinvd = 1 << 0, FlagProcC1 = 1 << 2, FlagSleepButton = 1 << 5, FlagFixRtc = 1 << 6;
    public const uint FlagTimerValExt = 1 << 8, FlagResetRegSupported = 1 << 10, FlagHardwareReduced = 1 << 20;

    /// <summary>The RTC CMOS index of the century byte (IBM AT convention; our RTC keeps it there).</summary>
    public const byte CenturyIndex = 0x32;

    /// <summary>C2 and C3 latencies above 100 and 1000 µs mean "not supported": C1 (HLT) only.</summary>
    private const ushort NoC2Latency = 101, NoC3Latency = 1001;

    public static byte[] Build(PlatformDescription d, uint facs, uint dsdt)
    {
        var pm = d.PmPorts;
        var t = AcpiHeader.Begin("FACP", Revision);
        t.U32(facs);                 // FIRMWARE_CTRL (X_FIRMWARE_CTRL stays 0: the table sits below 4 GiB)
        t.U32(dsdt);                 // DSDT
        t.U8(0);                     // reserved (INT_MODEL in ACPI 1.0)
        t.U8(0);                     // Preferred_PM_Profile: unspecified
        t.U16(d.SciIrq);             // SCI_INT: an ISA IRQ; the MADT override says level, active-high
        // SMI_CMD 0: there is no SMM and no legacy mode to leave. The machine is always in ACPI mode (SCI_EN
        // reads 1), so OSPM never writes ACPI_ENABLE/ACPI_DISABLE (ACPI 6.3, 4.8.2.5 and Table 5-34).
        t.U32(0);
        t.U8(0).U8(0);               // ACPI_ENABLE, ACPI_DISABLE
        t.U8(0);                     // S4BIOS_REQ
        t.U8(0);                     // PSTATE_CNT
        t.U32(pm.Pm1aEvent);         // PM1a_EVT_BLK
        t.U32(0);                    // PM1b_EVT_BLK
        t.U32(pm.Pm1aControl);       // PM1a_CNT_BLK
        t.U32(0);                    // PM1b_CNT_BLK
        t.U32(0);                    // PM2_CNT_BLK
        t.U32(pm.PmTimer);           // PM_TMR_BLK
        t.U32(0).U32(0);             // GPE0_BLK, GPE1_BLK: no general-purpose events
        t.U8(AcpiPmPorts.Pm1EventLength).U8(AcpiPmPorts.Pm1ControlLength).U8(0).U8(AcpiPmPorts.PmTimerLength);
        t.U8(0).U8(0).U8(0);         // GPE0_BLK_LEN, GPE1_BLK_LEN, GPE1_BASE
        t.U8(0);                     // CST_CNT
        t.U16(NoC2Latency).U16(NoC3Latency);
        t.U16(0).U16(0);             // FLUSH_SIZE, FLUSH_STRIDE (WBINVD works)
        t.U8(0).U8(0);               // DUTY_OFFSET, DUTY_WIDTH
        t.U8(0).U8(0);               // DAY_ALRM, MON_ALRM: the RTC has no day/month alarm
        t.U8(CenturyIndex);
        var bootArch = (ushort)(BootArchLegacyDevices | BootArch8042 | (d.VgaPresent ? 0 : BootArchNoVga));
        t.U16(bootArch);
        t.U8(0);                     // reserved
        var flags = FlagWbinvd | FlagProcC1 | FlagSleepButton | FlagFixRtc; // PWR_BUTTON 0: a fixed-feature power button
        if (d.ResetPort is not null) flags |= FlagResetRegSupported;
        t.U32(flags);
        (d.ResetPort is { } rp ? Gas.Io(rp, 1, Gas.AccessByte) : Gas.None).WriteTo(t); // RESET_REG
        t.U8(d.ResetPort is null ? (byte)0 : d.ResetValue);
        t.U16(0);                    // ARM_BOOT_ARCH
        t.U8(MinorVersion);
        t.U64(0);                    // X_FIRMWARE_CTRL
        t.U64(dsdt);                 // X_DSDT
        Gas.Io(pm.Pm1aEvent, AcpiPmPorts.Pm1EventLength, Gas.AccessWord).WriteTo(t);
        Gas.None.WriteTo(t);         // X_PM1b_EVT_BLK
        Gas.Io(pm.Pm1aControl, AcpiPmPorts.Pm1ControlLength, Gas.AccessWord).WriteTo(t);
        Gas.None.WriteTo(t);         // X_PM1b_CNT_BLK
        Gas.None.WriteTo(t);         // X_PM2_CNT_BLK
        Gas.Io(pm.PmTimer, AcpiPmPorts.PmTimerLength, Gas.AccessDword).WriteTo(t);
        Gas.None.WriteTo(t);         // X_GPE0_BLK
        Gas.None.WriteTo(t);         // X_GPE1_BLK
        Gas.None.WriteTo(t);         // SLEEP_CONTROL_REG (hardware-reduced only)
        Gas.None.WriteTo(t);         // SLEEP_STATUS_REG
        t.U64(0);                    // Hypervisor Vendor Identity
        if (t.Length != Length) throw new InvalidOperationException($"FADT is {t.Length} bytes, expected {Length}");
        return AcpiHeader.Finish(t);
    }
}
