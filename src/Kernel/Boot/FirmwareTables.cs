using Actorvisor.Kernel.Boot.Acpi;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot;

/// <summary>
/// Where the firmware tables live: in the BIOS area 0xE0000-0xFFFFF, which the e820 map
/// (<see cref="PhysicalMemoryMap"/>) reports reserved, so the guest never takes it for RAM. ACPI gets
/// 0xE0000-0xEFFFF with the RSDP first (Linux scans 0xE0000-0xFFFFF on 16-byte boundaries for "RSD PTR ");
/// the MP floating pointer and its table go at 0xF0000, inside the 0xF0000-0xFFFFF window Linux's MP scan covers.
/// </summary>
public static class FirmwareLayout
{
    public const ulong BiosAreaStart = 0xE0000, BiosAreaEnd = 0x100000;
    public const ulong AcpiStart = 0xE0000, AcpiEnd = 0xF0000;
    public const ulong MpStart = 0xF0000, MpEnd = 0xF1000;
}

public sealed record FirmwareTableAddresses(AcpiTableAddresses Acpi, MpTableAddresses Mp)
{
    /// <summary>For boot_params.acpi_rsdp_addr (zero page offset 0x070, boot protocol 2.14+).</summary>
    public ulong Rsdp => Acpi.Rsdp;
}

/// <summary>Writes the ACPI and MP tables of one machine at the places <see cref="FirmwareLayout"/> fixes.</summary>
public static class FirmwareTables
{
    public static FirmwareTableAddresses Write(GuestMemory mem, PlatformDescription d)
    {
        if (!mem.IsRam(FirmwareLayout.BiosAreaStart, FirmwareLayout.BiosAreaEnd - FirmwareLayout.BiosAreaStart))
            throw new ArgumentException("guest memory does not cover the BIOS area 0xE0000-0xFFFFF", nameof(mem));
        var acpi = AcpiTables.Write(mem, d, FirmwareLayout.AcpiStart, FirmwareLayout.AcpiEnd);
        var mp = MpTable.Write(mem, d, FirmwareLayout.MpStart, FirmwareLayout.MpEnd);
        return new FirmwareTableAddresses(acpi, mp);
    }
}
