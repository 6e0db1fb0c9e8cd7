using System.Text;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Tests.Boot.Acpi;

/// <summary>Reads firmware tables back out of guest memory the way a guest OS does: by scanning and following pointers.</summary>
internal static class FirmwareTableReader
{
    public static string Signature(GuestMemory mem, ulong at, int length = 4) => Encoding.ASCII.GetString(mem.GetSpan(at, length));

    public static byte Sum(GuestMemory mem, ulong at, int length)
    {
        byte s = 0;
        foreach (var b in mem.GetSpan(at, length)) s += b;
        return s;
    }

    /// <summary>Linux's acpi_scan_rsdp / ACPICA AcpiTbScanMemoryForRsdp: 16-byte steps, signature, 20-byte checksum, and for revision 2+ the 36-byte extended checksum.</summary>
    public static ulong? ScanForRsdp(GuestMemory mem, ulong start = 0xE0000, ulong end = 0x100000)
    {
        for (var a = start; a + 36 <= end; a += 16)
        {
            if (Signature(mem, a, 8) != "RSD PTR ") continue;
            if (Sum(mem, a, 20) != 0) continue;
            if (mem.ReadByte(a + 15) >= 2 && Sum(mem, a, (int)mem.ReadUInt32(a + 20)) != 0) continue;
            return a;
        }
        return null;
    }

    /// <summary>Linux's smp_scan_config: "_MP_" on a 16-byte boundary, length 1, checksum zero, revision 1 or 4.</summary>
    public static ulong? ScanForMpFloatingPointer(GuestMemory mem, ulong start = 0xF0000, ulong end = 0x100000)
    {
        for (var a = start; a + 16 <= end; a += 16)
            if (Signature(mem, a) == "_MP_" && mem.ReadByte(a + 8) == 1 && Sum(mem, a, 16) == 0 && mem.ReadByte(a + 9) is 1 or 4)
                return a;
        return null;
    }

    public static int TableLength(GuestMemory mem, ulong at) => (int)mem.ReadUInt32(at + 4);

    public static byte[] Table(GuestMemory mem, ulong at) => mem.GetSpan(at, TableLength(mem, at)).ToArray();

    /// <summary>The 64-bit table pointers of the XSDT at <paramref name="xsdt"/>.</summary>
    public static List<ulong> XsdtEntries(GuestMemory mem, ulong xsdt)
    {
        var n = (TableLength(mem, xsdt) - 36) / 8;
        return Enumerable.Range(0, n).Select(i => mem.ReadUInt64(xsdt + 36 + (ulong)(8 * i))).ToList();
    }

    public static List<ulong> RsdtEntries(GuestMemory mem, ulong rsdt)
    {
        var n = (TableLength(mem, rsdt) - 36) / 4;
        return Enumerable.Range(0, n).Select(i => (ulong)mem.ReadUInt32(rsdt + 36 + (ulong)(4 * i))).ToList();
    }
}
