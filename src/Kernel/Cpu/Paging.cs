using System.Runtime.CompilerServices;

namespace Actorvisor.Kernel.Cpu;

/// <summary>What an access through the MMU is for.</summary>
public enum AccessKind : byte { Read, Write, Execute }

/// <summary>One software TLB entry: a linear page mapped to a guest-physical page and, for RAM, a host page.</summary>
internal struct TlbEntry
{
    /// <summary>Linear page address (low 12 bits clear); <see cref="ulong.MaxValue"/> when empty.</summary>
    public ulong Tag;
    /// <summary>Host address of the page if it is RAM, else 0 (MMIO goes the slow way).</summary>
    public nint Host;
    public ulong PhysPage;
    public bool Global;
}

/// <summary>
/// Paging (SDM Vol. 3A, chapter 4): the walkers for 32-bit (with PSE), PAE and 4-level paging, with
/// accessed/dirty updates, NX, WP and the U/S checks; and a direct-mapped software TLB per access kind and
/// privilege, flushed by CR3 writes (except global pages with CR4.PGE), INVLPG and CR0/CR4 changes.
/// An entry exists only where the access it serves is allowed (a write entry only once the page is dirty),
/// so a hit needs no further checks.
/// </summary>
public sealed unsafe partial class SoftwareCpu
{
    internal const int TlbBits = 10;
    internal const int TlbSize = 1 << TlbBits;
    internal const int TlbMask = TlbSize - 1;

    // [0] supervisor, [1] user.
    private TlbEntry[][] _tlbRead = null!, _tlbWrite = null!, _tlbExec = null!;
    internal TlbEntry[] TlbR = null!, TlbW = null!, TlbX = null!;

    private void InitTlb()
    {
        _tlbRead = [NewTlb(), NewTlb()];
        _tlbWrite = [NewTlb(), NewTlb()];
        _tlbExec = [NewTlb(), NewTlb()];
        SelectTlb();
    }

    private static TlbEntry[] NewTlb()
    {
        var t = new TlbEntry[TlbSize];
        for (var i = 0; i < t.Length; i++) t[i].Tag = ulong.MaxValue;
        return t;
    }

    private void SelectTlb()
    {
        if (_tlbRead is null) return;
        var u = Cpl == 3 ? 1 : 0;
        TlbR = _tlbRead[u]; TlbW = _tlbWrite[u]; TlbX = _tlbExec[u];
    }

    /// <summary>Drops TLB entries: all, or all but global ones (a CR3 write with CR4.PGE).</summary>
    public void FlushTlb(bool includeGlobal)
    {
        foreach (var set in new[] { _tlbRead, _tlbWrite, _tlbExec })
        foreach (var t in set)
            for (var i = 0; i < t.Length; i++)
                if (includeGlobal || !t[i].Global) { t[i].Tag = ulong.MaxValue; t[i].Global = false; }
    }

    /// <summary>INVLPG: drops any entry for this linear page, global or not.</summary>
    public void InvalidatePage(ulong linear)
    {
        var tag = linear & ~0xFFFUL;
        var idx = (int)(linear >> 12) & TlbMask;
        foreach (var set in new[] { _tlbRead, _tlbWrite, _tlbExec })
        foreach (var t in set)
            if (t[idx].Tag == tag) { t[idx].Tag = ulong.MaxValue; t[idx].Global = false; }
    }

    /// <summary>
    /// Translates a linear address for an access, filling the TLB. <paramref name="user"/> is the privilege
    /// the access is checked with (CPL 3, except implicit supervisor accesses to system tables).
    /// Throws #PF on a failed walk.
    /// </summary>
    internal ulong Translate(ulong linear, AccessKind kind, bool user)
    {
        ulong phys;
        bool global = false, writable = true, executable = true, userOk = true, dirty = true;
        if (!PagingEnabled)
        {
            phys = ProtectedMode || Is64 ? linear & 0xFFFF_FFFF : linear & 0xFFFF_FFFF;
        }
        else
        {
            phys = Walk(linear, kind, user, out global, out writable, out executable, out userOk, out dirty);
        }

        // Fill only the TLB that matches this access's privilege, and only with what it allows.
        var tag = linear & ~0xFFFUL;
        var idx = (int)(linear >> 12) & TlbMask;
        var u = user ? 1 : 0;
        var host = (nint)Memory.HostPointer(phys & ~0xFFFUL);
        var entry = new TlbEntry { Tag = tag, Host = host, PhysPage = phys & ~0xFFFUL, Global = global };
        if (!user || userOk)
        {
            _tlbRead[u][idx] = entry;
            if (executable) _tlbExec[u][idx] = entry;
            if (dirty && (writable || (!user && (Cr0 & Cpu.Cr0.WP) == 0))) _tlbWrite[u][idx] = entry;
        }
        return phys;
    }

    /// <summary>Walks the page tables; sets A/D bits; returns the physical address or throws #PF.</summary>
    private ulong Walk(ulong linear, AccessKind kind, bool user, out bool global, out bool writable,
        out bool executable, out bool userOk, out bool dirty)
    {
        var write = kind == AccessKind.Write;
        var fetch = kind == AccessKind.Execute;
        var nxe = (EferValue & Efer.NXE) != 0;
        var wp = (Cr0 & Cpu.Cr0.WP) != 0;
        writable = true; userOk = true; executable = true;
        global = false;
        uint err = (write ? PfError.Write : 0) | (user ? PfError.User : 0) | (fetch && nxe ? PfError.Fetch : 0);

        // The entries of the walk, so the A and D bits can be set once the walk succeeds.
        Span<ulong> entryAddrs = stackalloc ulong[5];
        Span<ulong> entries = stackalloc ulong[5];
        var levels = 0;
        ulong phys;
        var large = false;
        int leafShift;

        if (LongModeActive)
        {
            if (!IsCanonical(linear)) throw CpuFault.General(0);
            var table = Cr3 & 0x000F_FFFF_FFFF_F000UL;
            leafShift = 12;
            ulong e = 0;
            for (var level = 4; level >= 1; level--)
            {
                var shift = 12 + 9 * (level - 1);
                var addr = table + (((linear >> shift) & 0x1FF) << 3);
                e = ReadPte64(addr, linear, err);
                if ((e & 1) == 0) throw CpuFault.PageFault(err, linear);
                if ((e & ReservedBits64(level)) != 0 || (!nxe && (e & (1UL << 63)) != 0))
                    throw CpuFault.PageFault(err | PfError.Present | PfError.Reserved, linear);
                entryAddrs[levels] = addr; entries[levels] = e; levels++;
                writable &= (e & 2) != 0;
                userOk &= (e & 4) != 0;
                if (nxe && (e & (1UL << 63)) != 0) executable = false;
                if (level <= 3 && (e & 0x80) != 0)
                {
                    if (level == 3 && !Model.Has1GPages)
                        throw CpuFault.PageFault(err | PfError.Present | PfError.Reserved, linear);
                    large = true; leafShift = shift; break;
                }
                if (level == 1) break;
                table = e & 0x000F_FFFF_FFFF_F000UL;
            }
            var frameMask = 0x000F_FFFF_FFFF_F000UL & ~((1UL << leafShift) - 1);
            phys = (e & frameMask) | (linear & ((1UL << leafShift) - 1));
            global = (e & 0x100) != 0 && (Cr4 & Cpu.Cr4.PGE) != 0;
        }
        else if ((Cr4 & Cpu.Cr4.PAE) != 0)
        {
            var pdpteAddr = (Cr3 & 0xFFFF_FFE0UL) + (((linear >> 30) & 3) << 3);
            var pdpte = ReadPte64(pdpteAddr, linear, err);
            if ((pdpte & 1) == 0) throw CpuFault.PageFault(err, linear);
            if ((pdpte & 0xFFF0_0000_0000_01E6UL) != 0) throw CpuFault.PageFault(err | PfError.Present | PfError.Reserved, linear);
            var table = pdpte & 0x000F_FFFF_FFFF_F000UL;
            ulong e = 0;
            leafShift = 12;
            for (var level = 2; level >= 1; level--)
            {
                var shift = 12 + 9 * (level - 1);
                var addr = table + (((linear >> shift) & 0x1FF) << 3);
                e = ReadPte64(addr, linear, err);
                if ((e & 1) == 0) throw CpuFault.PageFault(err, linear);
                if ((e & ReservedBits64(level)) != 0 || (!nxe && (e & (1UL << 63)) != 0))
                    throw CpuFault.PageFault(err | PfError.Present | PfError.Reserved, linear);
                entryAddrs[levels] = addr; entries[levels] = e; levels++;
                writable &= (e & 2) != 0;
                userOk &= (e & 4) != 0;
                if (nxe && (e & (1UL << 63)) != 0) executable = false;
                if (level == 2 && (e & 0x80) != 0) { large = true; leafShift = 21; break; }
                table = e & 0x000F_FFFF_FFFF_F000UL;
            }
            var frameMask = 0x000F_FFFF_FFFF_F000UL & ~((1UL << leafShift) - 1);
            phys = (e & frameMask) | (linear & ((1UL << leafShift) - 1));
            global = (e & 0x100) != 0 && (Cr4 & Cpu.Cr4.PGE) != 0;
        }
        else
        {
            linear &= 0xFFFF_FFFF;
            var pdeAddr = (Cr3 & 0xFFFF_F000UL) + ((linear >> 22) << 2);
            var pde = (ulong)ReadPte32(pdeAddr, linear, err);
            if ((pde & 1) == 0) throw CpuFault.PageFault(err, linear);
            entryAddrs[levels] = pdeAddr; entries[levels] = pde; levels++;
            writable &= (pde & 2) != 0;
            userOk &= (pde & 4) != 0;
            if ((pde & 0x80) != 0 && (Cr4 & Cpu.Cr4.PSE) != 0)
            {
                large = true;
                // PSE-36: bits 13-20 of the PDE give physical bits 32-39.
                phys = (pde & 0xFFC0_0000UL) | ((pde & 0x1FE000UL) << 19) | (linear & 0x3F_FFFF);
                global = (pde & 0x100) != 0 && (Cr4 & Cpu.Cr4.PGE) != 0;
            }
            else
            {
                var pteAddr = (pde & 0xFFFF_F000UL) + (((linear >> 12) & 0x3FF) << 2);
                var pte = (ulong)ReadPte32(pteAddr, linear, err);
                if ((pte & 1) == 0) throw CpuFault.PageFault(err, linear);
                entryAddrs[levels] = pteAddr; entries[levels] = pte; levels++;
                writable &= (pte & 2) != 0;
                userOk &= (pte & 4) != 0;
                phys = (pte & 0xFFFF_F000UL) | (linear & 0xFFF);
                global = (pte & 0x100) != 0 && (Cr4 & Cpu.Cr4.PGE) != 0;
            }
        }

        // Protection checks (SDM 4.6).
        if (user && !userOk) throw CpuFault.PageFault(err | PfError.Present, linear);
        if (write && !writable && (user || wp)) throw CpuFault.PageFault(err | PfError.Present, linear);
        if (fetch && !executable) throw CpuFault.PageFault(err | PfError.Present, linear);
        _ = large;

        // Accessed on every level; dirty on the leaf for a write.
        var is64Entries = LongModeActive || (Cr4 & Cpu.Cr4.PAE) != 0;
        for (var i = 0; i < levels; i++)
        {
            var leaf = i == levels - 1;
            var want = entries[i] | 0x20 | (leaf && write ? 0x40UL : 0);
            if (want != entries[i]) WritePte(entryAddrs[i], want, is64Entries);
        }
        dirty = write || (entries[levels - 1] & 0x40) != 0;
        return phys;
    }

    private ulong ReservedBits64(int level)
    {
        // Physical-address bits above MAXPHYADDR are reserved.
        var above = ~((1UL << Model.PhysicalAddressBits) - 1) & 0x000F_FFFF_FFFF_FFFFUL;
        return level switch
        {
            4 => above | 0x80, // PS must be 0 in a PML4E
            _ => above,
        };
    }

    private ulong ReadPte64(ulong addr, ulong linear, uint err)
    {
        var p = Memory.HostPointer(addr);
        // A paging structure outside RAM reads as all zeros here; the walk then faults as not present.
        return p == null ? 0 : *(ulong*)p;
    }

    private uint ReadPte32(ulong addr, ulong linear, uint err)
    {
        var p = Memory.HostPointer(addr);
        return p == null ? 0 : *(uint*)p;
    }

    private void WritePte(ulong addr, ulong value, bool is64)
    {
        var p = Memory.HostPointer(addr);
        if (p == null) return;
        // Another vCPU may update the same entry: set bits atomically.
        if (is64) Interlocked.Or(ref *(ulong*)p, value);
        else Interlocked.Or(ref *(uint*)p, (uint)value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsCanonical(ulong la) => (ulong)((long)(la << 16) >> 16) == la;
}
