namespace Actorvisor.Actors.Cpu.Lapic;

/// <summary>
/// The xAPIC register page (SDM Vol. 3A, 11.4.1 Table 11-1) and its bit fields. Offsets are inside the
/// 4 KiB window at IA32_APIC_BASE (FEE00000h by default); every register is 32 bits on a 16-byte boundary.
/// </summary>
public static class LapicRegisters
{
    public const ulong DefaultBase = 0xFEE0_0000, WindowSize = 0x1000;

    public const uint Id = 0x020, Version = 0x030, Tpr = 0x080, Apr = 0x090, Ppr = 0x0A0, Eoi = 0x0B0, Rrd = 0x0C0,
        Ldr = 0x0D0, Dfr = 0x0E0, Svr = 0x0F0, IsrBase = 0x100, TmrBase = 0x180, IrrBase = 0x200, Esr = 0x280,
        LvtCmci = 0x2F0, IcrLow = 0x300, IcrHigh = 0x310, LvtTimer = 0x320, LvtThermal = 0x330, LvtPmc = 0x340,
        LvtLint0 = 0x350, LvtLint1 = 0x360, LvtError = 0x370, TimerInitialCount = 0x380, TimerCurrentCount = 0x390,
        TimerDivide = 0x3E0;

    /// <summary>
    /// LVT entries: timer .. error in register order from LvtTimer (320h-370h), then CMCI, whose register
    /// (2F0h) sits apart. Nothing raises a thermal, performance-counter or CMCI interrupt here (no sensors,
    /// no counters, no machine-check banks), but the registers exist as on the chip and as in bhyve.
    /// </summary>
    public const int LvtTimerIndex = 0, LvtThermalIndex = 1, LvtPmcIndex = 2, LvtLint0Index = 3, LvtLint1Index = 4,
        LvtErrorIndex = 5, LvtCmciIndex = 6, LvtCount = 7;

    /// <summary>
    /// Version 14h (integrated APIC), max LVT entry 6 (seven LVTs with CMCI, SDM 11.4.8: the field is the
    /// number of LVT entries minus 1), no EOI-broadcast suppression.
    /// </summary>
    public const uint VersionValue = 0x14 | ((uint)(LvtCount - 1) << 16);

    /// <summary>The LVT index of an LVT register offset, or -1.</summary>
    public static int LvtIndex(uint reg) => reg switch
    {
        >= LvtTimer and <= LvtError when (reg & 0xF) == 0 => (int)((reg - LvtTimer) >> 4),
        LvtCmci => LvtCmciIndex,
        _ => -1,
    };

    public const int IdShift = 24;
    public const uint LdrMask = 0xFF00_0000;
    /// <summary>DFR bits 27:0 read as ones; bits 31:28 are the model (1111b flat, 0000b cluster).</summary>
    public const uint DfrModelMask = 0xF000_0000, DfrReservedOnes = 0x0FFF_FFFF;
    public const uint DfrFlat = 0xF000_0000;

    // SVR
    public const uint SvrVectorMask = 0xFF, SvrEnable = 1 << 8, SvrFocusDisable = 1 << 9;
    public const uint SvrWritable = SvrVectorMask | SvrEnable | SvrFocusDisable;
    public const uint SvrPowerOn = 0xFF;

    // LVT fields (SDM 11.5.1, Figure 11-8)
    public const uint LvtVectorMask = 0xFF;
    public const int LvtDeliveryModeShift = 8;
    public const uint LvtDeliveryModeMask = 0x700;
    public const uint LvtDeliveryStatus = 1 << 12;
    public const uint LvtPolarityLow = 1 << 13;
    public const uint LvtRemoteIrr = 1 << 14;
    public const uint LvtLevelTriggered = 1 << 15;
    public const uint LvtMasked = 1 << 16;
    public const uint LvtTimerPeriodic = 1 << 17;

    /// <summary>Bits a write may set, per LVT (everything else is reserved or read-only and ignored).</summary>
    public static readonly uint[] LvtWritable =
    [
        LvtVectorMask | LvtMasked | LvtTimerPeriodic,                                     // timer (no TSC-deadline mode)
        LvtVectorMask | LvtDeliveryModeMask | LvtMasked,                                  // thermal
        LvtVectorMask | LvtDeliveryModeMask | LvtMasked,                                  // performance counters
        LvtVectorMask | LvtDeliveryModeMask | LvtPolarityLow | LvtLevelTriggered | LvtMasked, // LINT0
        LvtVectorMask | LvtDeliveryModeMask | LvtPolarityLow | LvtLevelTriggered | LvtMasked, // LINT1
        LvtVectorMask | LvtMasked,                                                        // error
        LvtVectorMask | LvtDeliveryModeMask | LvtMasked,                                  // CMCI
    ];

    // ESR bits (SDM 11.5.3)
    public const uint EsrSendIllegalVector = 1 << 5, EsrReceiveIllegalVector = 1 << 6, EsrIllegalRegister = 1 << 7;

    // ICR (SDM 11.6.1)
    public const uint IcrVectorMask = 0xFF;
    public const int IcrDeliveryModeShift = 8;
    public const uint IcrDeliveryModeMask = 0x700;
    public const uint IcrLogical = 1 << 11;
    public const uint IcrDeliveryStatus = 1 << 12;
    public const uint IcrLevelAssert = 1 << 14;
    public const uint IcrLevelTriggered = 1 << 15;
    public const int IcrShorthandShift = 18;
    public const uint IcrShorthandMask = 3u << 18;
    public const uint IcrLowWritable = IcrVectorMask | IcrDeliveryModeMask | IcrLogical | IcrLevelAssert |
                                       IcrLevelTriggered | IcrShorthandMask;
    public const uint IcrHighWritable = 0xFF00_0000;

    /// <summary>Divide configuration: bits 0, 1 and 3 (SDM 11.5.4, Figure 11-10).</summary>
    public const uint TimerDivideWritable = 0xB;

    /// <summary>The timer divisor for a divide-configuration value: 2, 4, ... 128, or 1 for 1011b.</summary>
    public static int Divisor(uint divideConfig)
    {
        var code = ((divideConfig & 8) >> 1) | (divideConfig & 3);
        return code == 7 ? 1 : 2 << (int)code;
    }
}
