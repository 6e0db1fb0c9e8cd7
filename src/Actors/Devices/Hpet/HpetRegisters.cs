namespace Actorvisor.Actors.Devices.Hpet;

/// <summary>
/// The High Precision Event Timer (IA-PC HPET Specification 1.0a, October 2004; section numbers below are
/// that document's). Every register is 64 bits wide at an 8-byte aligned offset of the 1 KiB block at
/// FED00000h; the guest may reach either half with a 32-bit access.
/// </summary>
public static class HpetRegisters
{
    /// <summary>The address every PC chipset and QEMU/bhyve use, and the ACPI HPET table names.</summary>
    public const ulong DefaultBase = 0xFED0_0000;
    /// <summary>2.3.1: one timer block decodes 1024 bytes.</summary>
    public const ulong WindowSize = 0x400;

    /// <summary>Comparators in the block (the spec allows 3 to 32): 8, as bhyve and QEMU's maximum.</summary>
    public const int TimerCount = 8;

    /// <summary>
    /// Main counter frequency: 10 MHz, the spec's minimum, so COUNTER_CLK_PERIOD = 10^15 / 10^7 fs = 100 ns,
    /// exactly the largest period the spec allows (05F5E100h, 2.3.4). Linux accepts it (HPET_MAX_PERIOD).
    /// </summary>
    public const long CounterHz = 10_000_000;
    public const uint CounterPeriodFs = 100_000_000;

    // ---- 2.3.3 register offsets ----
    public const ulong Capabilities = 0x000;
    public const ulong Configuration = 0x010;
    public const ulong InterruptStatus = 0x020;
    public const ulong MainCounter = 0x0F0;
    /// <summary>Timer n's registers start at 100h + 20h * n.</summary>
    public const ulong TimerBase = 0x100, TimerStride = 0x20;
    public const ulong TimerConfigOffset = 0x00, TimerComparatorOffset = 0x08, TimerFsbRouteOffset = 0x10;

    public static ulong TimerConfig(int n) => TimerBase + TimerStride * (ulong)n + TimerConfigOffset;
    public static ulong TimerComparator(int n) => TimerBase + TimerStride * (ulong)n + TimerComparatorOffset;
    public static ulong TimerFsbRoute(int n) => TimerBase + TimerStride * (ulong)n + TimerFsbRouteOffset;

    // ---- 2.3.4 General Capabilities and ID (read-only) ----
    public const ulong RevisionId = 0x01;                 // bits 7:0, must not be 0
    public const int NumTimersShift = 8;                  // bits 12:8 NUM_TIM_CAP: number of the last timer
    public const ulong CountSize64 = 1UL << 13;           // COUNT_SIZE_CAP
    public const ulong LegacyRouteCapable = 1UL << 15;    // LEG_RT_CAP
    public const int VendorShift = 16;                    // bits 31:16 VENDOR_ID
    public const ulong VendorIntel = 0x8086;
    public const int PeriodShift = 32;                    // bits 63:32 COUNTER_CLK_PERIOD, femtoseconds

    public const ulong CapabilitiesValue =
        RevisionId | (ulong)(TimerCount - 1) << NumTimersShift | CountSize64 | LegacyRouteCapable |
        VendorIntel << VendorShift | (ulong)CounterPeriodFs << PeriodShift;

    // ---- 2.3.5 General Configuration ----
    public const ulong Enable = 1UL << 0;                 // ENABLE_CNF: counter runs, interrupts may be generated
    public const ulong LegacyRoute = 1UL << 1;            // LEG_RT_CNF: timer 0 -> IRQ0/pin 2, timer 1 -> IRQ8
    public const ulong ConfigurationWritable = Enable | LegacyRoute;

    /// <summary>LegacyReplacement routes (2.3.5): ISA IRQ numbers; the ISA router puts IRQ 0 on IOAPIC pin 2.</summary>
    public const int LegacyTimer0Irq = 0, LegacyTimer1Irq = 8;

    // ---- 2.3.6 General Interrupt Status: bit n is Tn_INT_STS ----
    public const ulong InterruptStatusImplemented = (1UL << TimerCount) - 1;

    // ---- 2.3.8 Timer N Configuration and Capability ----
    public const ulong LevelTriggered = 1UL << 1;         // Tn_INT_TYPE_CNF (0 = edge)
    public const ulong InterruptEnable = 1UL << 2;        // Tn_INT_ENB_CNF
    public const ulong Periodic = 1UL << 3;               // Tn_TYPE_CNF
    public const ulong PeriodicCapable = 1UL << 4;        // Tn_PER_INT_CAP (read-only)
    public const ulong Size64Capable = 1UL << 5;          // Tn_SIZE_CAP (read-only)
    public const ulong ValueSet = 1UL << 6;               // Tn_VAL_SET_CNF: next comparator write sets the accumulator
    public const ulong Mode32 = 1UL << 8;                 // Tn_32MODE_CNF
    public const int RouteShift = 9;                      // Tn_INT_ROUTE_CNF, bits 13:9
    public const ulong RouteMask = 0x1FUL << RouteShift;
    public const ulong FsbEnable = 1UL << 14;             // Tn_FSB_EN_CNF
    public const ulong FsbCapable = 1UL << 15;            // Tn_FSB_INT_DEL_CAP (read-only)
    public const int RouteCapShift = 32;                  // Tn_INT_ROUTE_CAP, bits 63:32

    /// <summary>Bits a guest write may change; the route field is further checked against the cap mask.</summary>
    public const ulong TimerConfigWritable = LevelTriggered | InterruptEnable | Periodic | ValueSet | Mode32 | RouteMask | FsbEnable;

    /// <summary>
    /// IOAPIC pins every timer may be routed to: 16-23, as bhyve (PCI pins nothing else on our board drives;
    /// pin 2 and 8 are reached only through LegacyReplacement, so an HPET pin never shares with the PIT or RTC).
    /// </summary>
    public const uint RouteCapability = 0x00FF_0000;

    /// <summary>Every timer: periodic-capable, 64-bit, FSB-capable, with the pin mask above (read-only part).</summary>
    public const ulong TimerCapabilities = PeriodicCapable | Size64Capable | FsbCapable | (ulong)RouteCapability << RouteCapShift;

    /// <summary>2.3.9: a comparator powers on to all ones (no match until the guest writes it).</summary>
    public const ulong ComparatorPowerOn = ulong.MaxValue;

    // ---- 2.3.10 FSB Interrupt Route: data in bits 31:0, address in bits 63:32 ----
    public const int FsbAddressShift = 32;
}
