using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Tests.Cpu;

public enum PagingKind { Bits32, Pae, FourLevel }

/// <summary>
/// Builds page tables in guest memory (SDM Vol. 3A, 4.3-4.5), allocating table pages from a pool.
/// Intermediate entries get <see cref="TableFlags"/> (present, writable, user by default) so that the
/// leaf's flags decide unless a test changes a level on purpose.
/// </summary>
internal sealed class PageTableBuilder
{
    public const ulong P = 1, RW = 2, US = 4, A = 0x20, D = 0x40, PS = 0x80, G = 0x100;
    public const ulong XD = 1UL << 63;

    private readonly GuestMemory _mem;
    private ulong _next;

    public PagingKind Kind { get; }
    /// <summary>The value for CR3.</summary>
    public ulong Root { get; }
    public ulong TableFlags { get; set; } = P | RW | US;

    public PageTableBuilder(GuestMemory mem, PagingKind kind, ulong pool = 0x40_0000)
    {
        _mem = mem;
        Kind = kind;
        _next = pool;
        Root = Alloc();
    }

    private ulong Alloc()
    {
        var p = _next;
        _next += 0x1000;
        _mem.GetSpan(p, 0x1000).Clear();
        return p;
    }

    private int EntrySize => Kind == PagingKind.Bits32 ? 4 : 8;

    public ulong ReadEntry(ulong addr) => EntrySize == 4 ? _mem.ReadUInt32(addr) : _mem.ReadUInt64(addr);

    public void WriteEntry(ulong addr, ulong value)
    {
        if (EntrySize == 4) _mem.WriteUInt32(addr, (uint)value);
        else _mem.WriteUInt64(addr, value);
    }

    /// <summary>Index shifts from the top level down to the 4 KiB level.</summary>
    private int[] Shifts => Kind switch
    {
        PagingKind.Bits32 => [22, 12],
        PagingKind.Pae => [30, 21, 12],
        _ => [39, 30, 21, 12],
    };

    private ulong IndexMask(int level) => Kind == PagingKind.Bits32 ? 0x3FFUL : Kind == PagingKind.Pae && level == 0 ? 3UL : 0x1FFUL;

    /// <summary>
    /// The address of the entry for <paramref name="linear"/> at the level whose pages are 1 &lt;&lt; shift
    /// bytes, creating tables above it as needed.
    /// </summary>
    public ulong EntryAddress(ulong linear, int shift)
    {
        var table = Root;
        var shifts = Shifts;
        for (var level = 0; ; level++)
        {
            var addr = table + ((linear >> shifts[level]) & IndexMask(level)) * (ulong)EntrySize;
            if (shifts[level] == shift) return addr;
            var e = ReadEntry(addr);
            if ((e & P) == 0)
            {
                var t = Alloc();
                // PAE PDPTEs have only P (bits 2:1 are reserved).
                ulong flags = Kind == PagingKind.Pae && level == 0 ? P : TableFlags;
                WriteEntry(addr, t | flags);
                e = t | flags;
            }
            table = e & 0x000F_FFFF_FFFF_F000UL;
        }
    }

    /// <summary>Maps a page of 4 KiB (or 2 MiB, 4 MiB, 1 GiB with PS) and returns its leaf entry's address.</summary>
    public ulong Map(ulong linear, ulong phys, ulong flags, ulong size = 0x1000)
    {
        var shift = System.Numerics.BitOperations.TrailingZeroCount(size);
        var addr = EntryAddress(linear, shift);
        WriteEntry(addr, phys | flags | (size > 0x1000 ? PS : 0));
        return addr;
    }

    /// <summary>Identity-maps [start, end) in 4 KiB supervisor pages, writable.</summary>
    public void IdentityMap(ulong start, ulong end, ulong flags = P | RW)
    {
        for (var a = start & ~0xFFFUL; a < end; a += 0x1000) Map(a, a, flags);
    }

    /// <summary>The entry addresses used to translate <paramref name="linear"/>, top level first.</summary>
    public List<ulong> Walk(ulong linear)
    {
        var list = new List<ulong>();
        var table = Root;
        var shifts = Shifts;
        for (var level = 0; level < shifts.Length; level++)
        {
            var addr = table + ((linear >> shifts[level]) & IndexMask(level)) * (ulong)EntrySize;
            list.Add(addr);
            var e = ReadEntry(addr);
            if ((e & P) == 0 || (level > 0 && (e & PS) != 0) || (Kind == PagingKind.Bits32 && (e & PS) != 0)) break;
            table = e & 0x000F_FFFF_FFFF_F000UL & (Kind == PagingKind.Bits32 ? 0xFFFF_F000UL : ulong.MaxValue);
        }
        return list;
    }
}
