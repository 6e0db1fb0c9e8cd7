using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Boot;

/// <summary>Memory types as the BIOS e820 call (and Multiboot's map) report them.</summary>
public enum E820Type : uint { Ram = 1, Reserved = 2, Acpi = 3, Nvs = 4 }

public readonly record struct E820Entry(ulong Base, ulong Length, E820Type Type);

/// <summary>
/// The guest-physical memory map firmware reports: conventional RAM below the EBDA, the legacy hole
/// (EBDA, VGA, BIOS ROM: 0x9FC00-0xFFFFF reserved), RAM from 1 MiB to the PCI hole, and RAM above 4 GiB.
/// </summary>
public static class PhysicalMemoryMap
{
    public const ulong EbdaStart = 0x9FC00;
    public const ulong HighMemoryStart = 0x100000;

    public static IReadOnlyList<E820Entry> For(GuestMemory mem)
    {
        var low = mem.LowRegion.Size;
        var list = new List<E820Entry>
        {
            new(0, EbdaStart, E820Type.Ram),
            new(EbdaStart, HighMemoryStart - EbdaStart, E820Type.Reserved),
        };
        if (low > HighMemoryStart) list.Add(new(HighMemoryStart, low - HighMemoryStart, E820Type.Ram));
        foreach (var r in mem.Regions.Skip(1)) list.Add(new(r.GuestBase, r.Size, E820Type.Ram));
        return list;
    }
}
