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
    /// <summary>Offset mask of the page the translation came from (0xFFF, or larger for 2 MiB/4 MiB/1 GiB pages).</summary>
    public ulong PageMask;
    public bool Global;
}

/// <summary>
/// Paging (SDM Vol. 3A, chapter 4): the walkers for 32-bit (with PSE), PAE and 4-level paging, with
/// accessed/dirty updates, NX, WP and the U/S checks; and a direct-mapped software TLB per access kind and
/// privilege, flushed by CR3 writes (except global pages with CR4.PGE), INVLPG and CR0/CR4 changes.
/// An entry exists only where the access it serves is allowed (a write entry only once the page is dirty),
/// so a hit needs no further checks. Large pages fill 4 KiB entries that remember the large page's size,
/// so INVLPG of any address in it drops them all (SDM 4.10.4.1). PAE paging reads its four PDPTEs into
/// registers when CR3, CR0 or CR4 is loaded (SDM 4.4.1) and uses those, not memory, until the next load.
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

    /// <summary>True once an entry from a large page may be in the TLB (INVLPG must then scan).</summary>
    private bool _largeInTlb;

    /// <summary>The PAE PDPTE registers and the CR3 they were loaded for (SDM 4.4.1).</summary>
    internal readonly ulong[] Pdptes = new ulong[4];
    private bool _pdptesLoaded;
    private ulong _pdptesCr3;

    /// <summary>
    /// Bumped whenever a translation may have changed (any flush, INVLPG, a switch between user and supervisor) or
    /// the decode cache was cleared: links between decoded blocks recorded under another value are not followed.
    /// </summary>
    internal int TranslationEpoch;

    /// <summary>
    /// Bumped as <see cref="TranslationEpoch"/> is, except by a flush that keeps global pages (a CR3 write with
    /// CR4.PGE): a link or jump-cache entry whose target page was translated by a global TLB entry records this
    /// too and stays valid across such flushes, as the translation does (SDM 4.10.2.4). Linux writes CR3 about
    /// 17 K times in a boot to /init, and its kernel text is global.
    /// </summary>
    internal int GlobalTranslationEpoch;

    /// <summary>
    /// Moves the translation epoch, and the global one too unless the flush keeps global pages: every change that may
    /// alter a translation (or the TLB a fetch uses) goes through here, so none can forget the global epoch.
    /// </summary>
    private void MoveTranslationEpochs(bool global = true)
    {
        TranslationEpoch++;
        if (global) GlobalTranslationEpoch++;
    }

    /// <summary>A link's global epoch when its target's translation is not global: never current.</summary>
    internal const int NotGlobal = int.MinValue;

    /// <summary>True while a link or jump-cache entry recorded under these epochs is what a lookup would translate.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal bool TranslationCurrent(int translationEpoch, int globalEpoch) =>
        translationEpoch == TranslationEpoch || globalEpoch == GlobalTranslationEpoch;

    /// <summary>
    /// The epoch to record with a link to the block at <paramref name="rip"/> (64-bit code): the global epoch if
    /// the exec TLB holds a global translation for its page, else <see cref="NotGlobal"/>.
    /// </summary>
    internal int GlobalEpochFor(ulong rip)
    {
        ref var e = ref TlbX[(int)(rip >> 12) & TlbMask];
        return e.Tag == (rip & ~0xFFFUL) && e.Global ? GlobalTranslationEpoch : NotGlobal;
    }

    /// <summary>
    /// Points the TLB at the current privilege's entries. Only a change between user and supervisor bumps the
    /// epoch: links and the jump cache hold translations checked for one kind of fetch. A CS load within the same
    /// kind (every interrupt and IRET in the kernel) changes no translation, and the links check the bitness.
    /// </summary>
    private void SelectTlb()
    {
        if (_tlbRead is null) return;
        var u = Cpl == 3 ? 1 : 0;
        if (ReferenceEquals(TlbR, _tlbRead[u])) return;
        MoveTranslationEpochs();
        TlbR = _tlbRead[u]; TlbW = _tlbWrite[u]; TlbX = _tlbExec[u];
    }

    /// <summary>Drops TLB entries: all, or all but global ones (a CR3 write with CR4.PGE).</summary>
    public void FlushTlb(bool includeGlobal)
    {
        MoveTranslationEpochs(global: includeGlobal);
        for (var u = 0; u < 2; u++)
        {
            if (_tlbFilledCount[u] > TlbFilledCapacity) FlushAll(u, includeGlobal);
            else FlushFilled(u, includeGlobal);
        }
        if (includeGlobal) _largeInTlb = false;
    }

    // Linux writes CR3 (or toggles CR4.PGE) tens of thousands of times in a boot, with a few dozen pages
    // touched in between: the indices filled since the last flush are cleared instead of all 6 × TlbSize
    // entries. Past the capacity the whole tables are cleared.
    private const int TlbFilledCapacity = 256;
    private readonly int[][] _tlbFilled = [new int[TlbFilledCapacity], new int[TlbFilledCapacity]];
    private readonly int[] _tlbFilledCount = new int[2];

    private void NoteTlbFill(int u, int idx)
    {
        var n = _tlbFilledCount[u];
        if (n < TlbFilledCapacity) _tlbFilled[u][n] = idx;
        if (n <= TlbFilledCapacity) _tlbFilledCount[u] = n + 1;
    }

    private void FlushFilled(int u, bool includeGlobal)
    {
        var filled = _tlbFilled[u];
        var n = _tlbFilledCount[u];
        var kept = 0;
        TlbEntry[] r = _tlbRead[u], w = _tlbWrite[u], x = _tlbExec[u];
        for (var k = 0; k < n; k++)
        {
            var i = filled[k];
            var global = FlushEntry(ref r[i], includeGlobal) | FlushEntry(ref w[i], includeGlobal) | FlushEntry(ref x[i], includeGlobal);
            // A global entry outlives this flush: a later flush of globals must still find it.
            if (global) filled[kept++] = i;
        }
        _tlbFilledCount[u] = kept;
    }

    /// <summary>Empties the entry unless it is global and globals stay; true if it stays (valid and global).</summary>
    private static bool FlushEntry(ref TlbEntry e, bool includeGlobal)
    {
        if (e.Tag == ulong.MaxValue) return false;
        if (!includeGlobal && e.Global) return true;
        e.Tag = ulong.MaxValue;
        e.Global = false;
        return false;
    }

    /// <summary>Clears the privilege's three tables entry by entry, noting the indices of the global entries that stay.</summary>
    private void FlushAll(int u, bool includeGlobal)
    {
        TlbEntry[] r = _tlbRead[u], w = _tlbWrite[u], x = _tlbExec[u];
        _tlbFilledCount[u] = 0;
        for (var i = 0; i < TlbSize; i++)
            if (FlushEntry(ref r[i], includeGlobal) | FlushEntry(ref w[i], includeGlobal) | FlushEntry(ref x[i], includeGlobal))
                NoteTlbFill(u, i);
    }

    /// <summary>INVLPG: drops every entry for the page holding this linear address, global or not.</summary>
    public void InvalidatePage(ulong linear)
    {
        MoveTranslationEpochs();
        var tag = linear & ~0xFFFUL;
        var idx = (int)(linear >> 12) & TlbMask;
        for (var u = 0; u < 2; u++)
        {
            foreach (var t in (ReadOnlySpan<TlbEntry[]>)[_tlbRead[u], _tlbWrite[u], _tlbExec[u]])
            {
                if (t[idx].Tag == tag) { t[idx].Tag = ulong.MaxValue; t[idx].Global = false; }
                if (!_largeInTlb) continue;
                // The 4 KiB pieces of a large page sit at other indices: drop each one the address falls in.
                for (var i = 0; i < t.Length; i++)
                    if (t[i].Tag != ulong.MaxValue && ((t[i].Tag ^ linear) & ~t[i].PageMask) == 0)
                    { t[i].Tag = ulong.MaxValue; t[i].Global = false; }
            }
        }
    }

    /// <summary>
    /// Reads the four PDPTEs PAE paging will use from the table at <paramref name="cr3"/> and checks their
    /// reserved bits; returns false (the caller raises #GP(0)) if a present entry has one set (SDM 4.4.1).
    /// </summary>
    internal bool TryReadPdptes(ulong cr3, Span<ulong> pdptes)
    {
        var table = cr3 & 0xFFFF_FFE0UL;
        for (var i = 0; i < 4; i++)
        {
            var e = ReadPte64(table + (ulong)i * 8);
            if ((e & 1) != 0 && (e & PdpteReserved) != 0) return false;
            pdptes[i] = e;
        }
        return true;
    }

    /// <summary>Installs PDPTEs read by <see cref="TryReadPdptes"/> as the PDPTE registers for this CR3.</summary>
    internal void SetPdptes(ReadOnlySpan<ulong> pdptes, ulong cr3)
    {
        pdptes.CopyTo(Pdptes);
        _pdptesLoaded = true;
        _pdptesCr3 = cr3;
    }

    private void ResetPdptes()
    {
        Array.Clear(Pdptes);
        _pdptesLoaded = false;
        _pdptesCr3 = 0;
    }

    /// <summary>PAE PDPTE reserved bits: 2:1, 8:5 and from MAXPHYADDR up (bit 63 included).</summary>
    private ulong PdpteReserved => 0x1E6UL | AbovePhysMask;

    /// <summary>True when PAE paging (not 4-level) translates addresses.</summary>
    internal bool PaeLegacyPaging => PagingEnabled && (Cr4 & Cpu.Cr4.PAE) != 0 && !LongModeActive;

    /// <summary>
    /// Translates a linear address for an access, filling the TLB. <paramref name="user"/> is the privilege
    /// the access is checked with (CPL 3, except implicit supervisor accesses to system tables).
    /// Throws #PF on a failed walk.
    /// </summary>
    internal ulong Translate(ulong linear, AccessKind kind, bool user)
    {
        ulong phys;
        bool global = false, writable = true, executable = true, userOk = true, dirty = true;
        ulong pageMask = 0xFFF;
        if (!PagingEnabled)
        {
            phys = linear & 0xFFFF_FFFF;
        }
        else
        {
            phys = Walk(linear, kind, user, out global, out writable, out executable, out userOk, out dirty, out pageMask);
            if (pageMask != 0xFFF) _largeInTlb = true;
        }

        // Fill only the TLB that matches this access's privilege, and only with what it allows.
        var tag = linear & ~0xFFFUL;
        var idx = (int)(linear >> 12) & TlbMask;
        var u = user ? 1 : 0;
        var host = (nint)Memory.HostPointer(phys & ~0xFFFUL);
        var entry = new TlbEntry { Tag = tag, Host = host, PhysPage = phys & ~0xFFFUL, PageMask = pageMask, Global = global };
        if (!user || userOk)
        {
            // An index is noted when its read entry fills from empty: entries of the three tables fill together,
            // so an index already holding one is noted already.
            if (_tlbRead[u][idx].Tag == ulong.MaxValue) NoteTlbFill(u, idx);
            _tlbRead[u][idx] = entry;
            if (executable) _tlbExec[u][idx] = entry;
            if (dirty && (writable || (!user && (Cr0 & Cpu.Cr0.WP) == 0))) _tlbWrite[u][idx] = entry;
        }
        return phys;
    }

    /// <summary>
    /// Walks the page tables (SDM 4.3-4.5): present and reserved bits level by level, then the combined
    /// U/S, R/W (with CR0.WP) and XD checks (4.6), then the accessed flag on every entry used and the dirty
    /// flag on the leaf for a write (4.8). Returns the physical address or throws #PF (#GP for a
    /// non-canonical address in IA-32e mode).
    /// </summary>
    private ulong Walk(ulong linear, AccessKind kind, bool user, out bool global, out bool writable,
        out bool executable, out bool userOk, out bool dirty, out ulong pageMask)
    {
        var write = kind == AccessKind.Write;
        var fetch = kind == AccessKind.Execute;
        var pae = LongModeActive || (Cr4 & Cpu.Cr4.PAE) != 0;
        // XD exists only with 64-bit entries; without NXE bit 63 is reserved.
        var nxe = pae && (EferValue & Efer.NXE) != 0;
        var wp = (Cr0 & Cpu.Cr0.WP) != 0;
        writable = true; userOk = true; executable = true;
        // The I/D bit is reported only where fetches can be refused (NXE; we have no SMEP).
        uint err = (write ? PfError.Write : 0) | (user ? PfError.User : 0) | (fetch && nxe ? PfError.Fetch : 0);
        const uint rsvd = PfError.Present | PfError.Reserved;

        // The entries of the walk, so the A and D bits can be set once the walk succeeds.
        Span<ulong> entryAddrs = stackalloc ulong[4];
        Span<ulong> entries = stackalloc ulong[4];
        var levels = 0;
        ulong leaf = 0;
        var leafShift = 12;
        var xdBit = nxe ? 0 : 1UL << 63;
        ulong phys;

        if (pae)
        {
            ulong table;
            int topLevel;
            ulong addrMask;   // physical-address field of an entry
            ulong aboveMask;  // reserved high bits: 51:M for 4-level, 62:M for PAE
            if (LongModeActive)
            {
                if (!IsCanonical(linear)) throw CpuFault.General(0);
                table = Cr3 & 0x000F_FFFF_FFFF_F000UL;
                topLevel = 4;
                aboveMask = AbovePhysMask & 0x000F_FFFF_FFFF_FFFFUL;
            }
            else
            {
                linear &= 0xFFFF_FFFF;
                var slot = (int)(linear >> 30) & 3;
                ulong pdpte;
                if (_pdptesLoaded && _pdptesCr3 == Cr3) pdpte = Pdptes[slot];
                else
                {
                    // CR3 was set without a MOV (a loader, a snapshot): read the PDPTE from memory.
                    pdpte = ReadPte64((Cr3 & 0xFFFF_FFE0UL) + (ulong)slot * 8);
                    if ((pdpte & 1) != 0 && (pdpte & PdpteReserved) != 0) throw CpuFault.PageFault(err | rsvd, linear);
                }
                if ((pdpte & 1) == 0) throw CpuFault.PageFault(err, linear);
                table = pdpte & 0x000F_FFFF_FFFF_F000UL;
                topLevel = 2;
                aboveMask = AbovePhysMask & 0x7FFF_FFFF_FFFF_FFFFUL;
            }
            addrMask = 0x000F_FFFF_FFFF_F000UL & ~aboveMask;
            for (var level = topLevel; level >= 1; level--)
            {
                var shift = 12 + 9 * (level - 1);
                var addr = table + (((linear >> shift) & 0x1FF) << 3);
                var e = ReadPte64(addr);
                if ((e & 1) == 0) throw CpuFault.PageFault(err, linear);
                var large = level is 2 or 3 && (e & 0x80) != 0;
                var reserved = aboveMask | xdBit;
                if (level == 4) reserved |= 0x80;                                  // PS is reserved in a PML4E
                else if (level == 3 && large && !Model.Has1GPages) reserved |= 0x80; // no 1 GiB pages
                else if (level == 3 && large) reserved |= 0x3FFF_E000UL;             // bits 29:13 of a 1 GiB page
                else if (level == 2 && large) reserved |= 0x1F_E000UL;               // bits 20:13 of a 2 MiB page
                if ((e & reserved) != 0) throw CpuFault.PageFault(err | rsvd, linear);
                entryAddrs[levels] = addr; entries[levels] = e; levels++;
                writable &= (e & 2) != 0;
                userOk &= (e & 4) != 0;
                if (nxe && (e & (1UL << 63)) != 0) executable = false;
                if (large || level == 1) { leaf = e; leafShift = shift; break; }
                table = e & addrMask;
            }
            var frameMask = addrMask & ~((1UL << leafShift) - 1);
            phys = (leaf & frameMask) | (linear & ((1UL << leafShift) - 1));
        }
        else
        {
            linear &= 0xFFFF_FFFF;
            var pdeAddr = (Cr3 & 0xFFFF_F000UL) + ((linear >> 22) << 2);
            var pde = (ulong)ReadPte32(pdeAddr);
            if ((pde & 1) == 0) throw CpuFault.PageFault(err, linear);
            entryAddrs[levels] = pdeAddr; entries[levels] = pde; levels++;
            writable &= (pde & 2) != 0;
            userOk &= (pde & 4) != 0;
            if ((pde & 0x80) != 0 && (Cr4 & Cpu.Cr4.PSE) != 0)
            {
                // A 4 MiB page. With PSE-36, PDE bits (M-20):13 give physical bits (M-1):32, M at most 40;
                // bits 21:(M-19) are reserved (SDM Table 4-4).
                var m = Model.HasPse36 ? Math.Min(Model.PhysicalAddressBits, 40) : 32;
                var reserved = 0x3F_E000UL & ~(((1UL << (m - 32)) - 1) << 13);
                if ((pde & reserved) != 0) throw CpuFault.PageFault(err | rsvd, linear);
                leaf = pde; leafShift = 22;
                phys = (pde & 0xFFC0_0000UL) | ((pde & 0x1F_E000UL) << 19) | (linear & 0x3F_FFFF);
            }
            else
            {
                var pteAddr = (pde & 0xFFFF_F000UL) + (((linear >> 12) & 0x3FF) << 2);
                var pte = (ulong)ReadPte32(pteAddr);
                if ((pte & 1) == 0) throw CpuFault.PageFault(err, linear);
                entryAddrs[levels] = pteAddr; entries[levels] = pte; levels++;
                writable &= (pte & 2) != 0;
                userOk &= (pte & 4) != 0;
                leaf = pte;
                phys = (pte & 0xFFFF_F000UL) | (linear & 0xFFF);
            }
        }

        // Protection checks (SDM 4.6): supervisor accesses may read and fetch user pages (no SMEP/SMAP)
        // and, with CR0.WP clear, write read-only pages.
        if (user && !userOk) throw CpuFault.PageFault(err | PfError.Present, linear);
        if (write && !writable && (user || wp)) throw CpuFault.PageFault(err | PfError.Present, linear);
        if (fetch && !executable) throw CpuFault.PageFault(err | PfError.Present, linear);

        // Accessed on every level used; dirty on the leaf for a write.
        for (var i = 0; i < levels; i++)
        {
            var isLeaf = i == levels - 1;
            var want = entries[i] | 0x20 | (isLeaf && write ? 0x40UL : 0);
            if (want != entries[i]) WritePte(entryAddrs[i], want, pae);
        }
        dirty = write || (leaf & 0x40) != 0;
        global = (leaf & 0x100) != 0 && (Cr4 & Cpu.Cr4.PGE) != 0;
        pageMask = (1UL << leafShift) - 1;
        return phys;
    }

    private ulong ReadPte64(ulong addr)
    {
        var p = Memory.HostPointer(addr);
        // A paging structure outside RAM reads as all zeros here; the walk then faults as not present.
        return p == null ? 0 : *(ulong*)p;
    }

    private uint ReadPte32(ulong addr)
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
