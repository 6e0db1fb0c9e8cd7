using System.Text;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot;

/// <summary>A module handed to a Multiboot kernel: its bytes and its string (often a command line).</summary>
public sealed record MultibootModule(byte[] Data, string Text);

/// <summary>
/// Writes the Multiboot information structure (Multiboot spec 0.6.96, section 3.3) and what it points to
/// (command line, modules and their strings, the memory map, the boot loader name) into guest memory.
/// </summary>
public static class MultibootInfo
{
    // Offsets in the information structure.
    public const int OffFlags = 0, OffMemLower = 4, OffMemUpper = 8, OffBootDevice = 12, OffCmdline = 16;
    public const int OffModsCount = 20, OffModsAddr = 24, OffMmapLength = 44, OffMmapAddr = 48, OffLoaderName = 64;
    public const int Size = 88;

    public const uint InfoMemory = 1 << 0, InfoBootDevice = 1 << 1, InfoCmdline = 1 << 2, InfoMods = 1 << 3;
    public const uint InfoMmap = 1 << 6, InfoLoaderName = 1 << 9;

    public const string LoaderName = "actorvisor";

    /// <summary>
    /// Lays out modules (page-aligned when the header asks) and the info structure from <paramref name="start"/>
    /// upwards; returns the info structure's address and the first free address after everything.
    /// </summary>
    public static (uint InfoAddress, ulong End) Write(GuestMemory mem, ulong start, string cmdline,
        IReadOnlyList<MultibootModule> modules, bool pageAlignModules)
    {
        var cursor = Align(start, 0x1000);
        // Modules first, so that they sit page-aligned right after the kernel as GRUB places them.
        var placed = new List<(uint Start, uint End)>();
        foreach (var m in modules)
        {
            cursor = pageAlignModules ? Align(cursor, 0x1000) : Align(cursor, 8);
            CheckFits(mem, cursor, (ulong)m.Data.Length, "module");
            mem.Write(cursor, m.Data);
            placed.Add(((uint)cursor, (uint)(cursor + (ulong)m.Data.Length)));
            cursor += (ulong)m.Data.Length;
        }

        cursor = Align(cursor, 0x1000);
        var info = cursor;
        cursor += Size;

        uint WriteString(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s + "\0");
            CheckFits(mem, cursor, (ulong)bytes.Length, "boot information");
            mem.Write(cursor, bytes);
            var at = (uint)cursor;
            cursor += (ulong)bytes.Length;
            return at;
        }

        var cmdAddr = WriteString(cmdline);
        var nameAddr = WriteString(LoaderName);
        var modStrings = modules.Select(m => WriteString(m.Text)).ToArray();

        cursor = Align(cursor, 8);
        var modsAddr = (uint)cursor;
        for (var i = 0; i < modules.Count; i++)
        {
            CheckFits(mem, cursor, 16, "module list");
            mem.WriteUInt32(cursor, placed[i].Start);
            mem.WriteUInt32(cursor + 4, placed[i].End);
            mem.WriteUInt32(cursor + 8, modStrings[i]);
            mem.WriteUInt32(cursor + 12, 0);
            cursor += 16;
        }

        // Memory map: low RAM, the legacy hole, RAM above 1 MiB up to the PCI hole, and RAM above 4 GiB.
        var map = PhysicalMemoryMap.For(mem);
        var mmapAddr = (uint)cursor;
        foreach (var (b, len, type) in map.Select(e => (e.Base, e.Length, (uint)e.Type)))
        {
            CheckFits(mem, cursor, 24, "memory map");
            mem.WriteUInt32(cursor, 20); // size of the entry, not counting this field
            mem.WriteUInt64(cursor + 4, b);
            mem.WriteUInt64(cursor + 12, len);
            mem.WriteUInt32(cursor + 20, type);
            cursor += 24;
        }
        var mmapLength = (uint)(cursor - mmapAddr);

        var low = mem.LowRegion.Size;
        CheckFits(mem, info, Size, "boot information");
        mem.GetSpan(info, Size).Clear();
        mem.WriteUInt32(info + OffFlags, InfoMemory | InfoCmdline | InfoMods | InfoMmap | InfoLoaderName);
        mem.WriteUInt32(info + OffMemLower, 640);
        mem.WriteUInt32(info + OffMemUpper, (uint)((Math.Min(low, GuestMemory.PciHoleStart) - 0x100000) / 1024));
        mem.WriteUInt32(info + OffCmdline, cmdAddr);
        mem.WriteUInt32(info + OffModsCount, (uint)modules.Count);
        mem.WriteUInt32(info + OffModsAddr, modsAddr);
        mem.WriteUInt32(info + OffMmapLength, mmapLength);
        mem.WriteUInt32(info + OffMmapAddr, mmapAddr);
        mem.WriteUInt32(info + OffLoaderName, nameAddr);
        return ((uint)info, cursor);
    }

    private static ulong Align(ulong v, ulong a) => (v + a - 1) & ~(a - 1);

    private static void CheckFits(GuestMemory mem, ulong at, ulong len, string what)
    {
        if (at + len > 0xFFFF_FFFFUL || !mem.IsRam(at, Math.Max(len, 1)))
            throw new KernelImageException($"the {what} does not fit in guest RAM below 4 GiB (at 0x{at:x}, {len} bytes); give the guest more memory");
    }
}
