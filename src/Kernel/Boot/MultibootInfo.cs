using System.Text;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot;

/// <summary>A module handed to a Multiboot kernel: its bytes and its string (often a command line).</summary>
public sealed record MultibootModule(byte[] Data, string Text);

/// <summary>
/// Writes the Multiboot information structure (Multiboot spec 0.6.96, section 3.3) and what it points to
/// (command line, modules and their strings, the memory map, the boot loader name) into guest memory.
/// <see cref="Plan"/> lays everything out and checks it against RAM; <see cref="Write"/> then writes it, so
/// a loader can check before it writes its first byte.
/// </summary>
public static class MultibootInfo
{
    // Offsets in the information structure.
    public const int OffFlags = 0, OffMemLower = 4, OffMemUpper = 8, OffBootDevice = 12, OffCmdline = 16;
    public const int OffModsCount = 20, OffModsAddr = 24, OffMmapLength = 44, OffMmapAddr = 48, OffLoaderName = 64;
    public const int Size = 88;
    /// <summary>One module entry: mod_start, mod_end, string, reserved.</summary>
    public const int ModuleEntrySize = 16;
    /// <summary>One memory-map entry: size (20, not counting itself), base_addr, length, type.</summary>
    public const int MmapEntrySize = 24;

    public const uint InfoMemory = 1 << 0, InfoBootDevice = 1 << 1, InfoCmdline = 1 << 2, InfoMods = 1 << 3;
    public const uint InfoMmap = 1 << 6, InfoLoaderName = 1 << 9;

    public const string LoaderName = "actorvisor";

    /// <summary>
    /// Lays out modules (page-aligned when the header asks, 8-byte aligned otherwise) and the info structure
    /// from <paramref name="start"/> upwards, plus <paramref name="extra"/> bytes (8-byte aligned) for the
    /// caller after everything, and checks that it all is guest RAM below 4 GiB. Writes nothing.
    /// </summary>
    public static MultibootLayout Plan(GuestMemory mem, ulong start, string cmdline,
        IReadOnlyList<MultibootModule> modules, bool pageAlignModules, int extra = 0)
    {
        var map = PhysicalMemoryMap.For(mem);
        var cmd = Encoding.UTF8.GetBytes(cmdline + "\0");
        var name = Encoding.UTF8.GetBytes(LoaderName + "\0");
        var modText = modules.Select(m => Encoding.UTF8.GetBytes(m.Text + "\0")).ToArray();

        // Modules first, so that they sit right after the kernel as GRUB places them.
        var cursor = Align(start, 0x1000);
        var modAt = new ulong[modules.Count];
        for (var i = 0; i < modules.Count; i++)
        {
            cursor = pageAlignModules ? Align(cursor, 0x1000) : Align(cursor, 8);
            modAt[i] = cursor;
            cursor += (ulong)modules[i].Data.Length;
        }
        var info = Align(cursor, 0x1000);
        cursor = info + Size;
        var cmdAddr = cursor; cursor += (ulong)cmd.Length;
        var nameAddr = cursor; cursor += (ulong)name.Length;
        var modTextAt = new ulong[modules.Count];
        for (var i = 0; i < modules.Count; i++) { modTextAt[i] = cursor; cursor += (ulong)modText[i].Length; }
        var modsAddr = Align(cursor, 8);
        var mmapAddr = modsAddr + (ulong)(modules.Count * ModuleEntrySize);
        var extraAt = Align(mmapAddr + (ulong)(map.Count * MmapEntrySize), 8);
        var end = extraAt + (ulong)extra;

        if (end > 0x1_0000_0000UL || !mem.IsRam(start, end - start))
            throw new KernelImageException(
                $"the multiboot modules and boot information need 0x{start:x}-0x{end:x}, which is not all guest RAM below 4 GiB; give the guest more memory (-m)");
        return new MultibootLayout(modules, map, cmd, name, modText, modAt, info, cmdAddr, nameAddr, modTextAt, modsAddr, mmapAddr, extraAt, end);
    }

    /// <summary>Writes what <see cref="Plan"/> laid out; returns the info structure's address.</summary>
    public static uint Write(GuestMemory mem, MultibootLayout l)
    {
        var modules = l.Modules;
        for (var i = 0; i < modules.Count; i++) mem.Write(l.ModuleAt[i], modules[i].Data);
        mem.GetSpan(l.Info, Size).Clear();
        mem.Write(l.CmdlineAt, l.Cmdline);
        mem.Write(l.LoaderNameAt, l.LoaderNameBytes);
        for (var i = 0; i < modules.Count; i++)
        {
            mem.Write(l.ModuleTextAt[i], l.ModuleTexts[i]);
            var e = l.ModsAddr + (ulong)(i * ModuleEntrySize);
            mem.WriteUInt32(e, (uint)l.ModuleAt[i]);
            mem.WriteUInt32(e + 4, (uint)(l.ModuleAt[i] + (ulong)modules[i].Data.Length));
            mem.WriteUInt32(e + 8, (uint)l.ModuleTextAt[i]);
            mem.WriteUInt32(e + 12, 0);
        }
        var map = l.Map;
        for (var i = 0; i < map.Count; i++)
        {
            var e = l.MmapAddr + (ulong)(i * MmapEntrySize);
            mem.WriteUInt32(e, MmapEntrySize - 4);
            mem.WriteUInt64(e + 4, map[i].Base);
            mem.WriteUInt64(e + 12, map[i].Length);
            mem.WriteUInt32(e + 20, (uint)map[i].Type);
        }

        var info = l.Info;
        var low = mem.LowRegion.Size;
        mem.WriteUInt32(info + OffFlags, InfoMemory | InfoCmdline | InfoMods | InfoMmap | InfoLoaderName);
        // mem_lower: KiB of RAM from 0 up to the first hole (the EBDA), as the memory map says.
        mem.WriteUInt32(info + OffMemLower, (uint)(PhysicalMemoryMap.EbdaStart / 1024));
        // mem_upper: KiB from 1 MiB up to the first hole above it (the PCI hole, or the end of RAM).
        mem.WriteUInt32(info + OffMemUpper, (uint)((Math.Min(low, GuestMemory.PciHoleStart) - PhysicalMemoryMap.HighMemoryStart) / 1024));
        mem.WriteUInt32(info + OffCmdline, (uint)l.CmdlineAt);
        mem.WriteUInt32(info + OffModsCount, (uint)modules.Count);
        mem.WriteUInt32(info + OffModsAddr, (uint)l.ModsAddr);
        mem.WriteUInt32(info + OffMmapLength, (uint)(map.Count * MmapEntrySize));
        mem.WriteUInt32(info + OffMmapAddr, (uint)l.MmapAddr);
        mem.WriteUInt32(info + OffLoaderName, (uint)l.LoaderNameAt);
        return (uint)info;
    }

    private static ulong Align(ulong v, ulong a) => (v + a - 1) & ~(a - 1);
}

/// <summary>Where <see cref="MultibootInfo.Plan"/> put everything: addresses, and the encoded strings to write.</summary>
public sealed record MultibootLayout(
    IReadOnlyList<MultibootModule> Modules, IReadOnlyList<E820Entry> Map, byte[] Cmdline, byte[] LoaderNameBytes, byte[][] ModuleTexts,
    ulong[] ModuleAt, ulong Info, ulong CmdlineAt, ulong LoaderNameAt, ulong[] ModuleTextAt, ulong ModsAddr, ulong MmapAddr,
    ulong Extra, ulong End);
