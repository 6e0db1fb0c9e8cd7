using System.Runtime.CompilerServices;

namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// Memory as instructions see it: segment checks (limits, types; SDM Vol. 3A, 5.3) turn an offset into a
/// linear address; the TLB turns it into a host pointer for RAM, or the platform's MMIO for anything else.
/// The fast path (TLB hit inside one page) is a tag compare and a load.
/// </summary>
public sealed unsafe partial class SoftwareCpu
{
    /// <summary>Set while delivering an event: accesses to system structures are supervisor accesses.</summary>
    internal bool ImplicitSupervisor;

    private bool UserAccess => Cpl == 3 && !ImplicitSupervisor;

    // ---- segmented access ----

    /// <summary>Offset in a segment → linear address, with the limit and type checks of non-64-bit modes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong SegmentedAddress(int seg, ulong offset, int size, AccessKind kind)
    {
        if (Bitness == 64)
        {
            var la = seg >= Seg.FS ? offset + Segs[seg].Base : offset;
            if (!IsCanonical(la)) throw seg == Seg.SS ? CpuFault.StackFault(0) : CpuFault.General(0);
            return la;
        }
        return LegacySegmentedAddress(seg, offset, size, kind);
    }

    private ulong LegacySegmentedAddress(int seg, ulong offset, int size, AccessKind kind)
    {
        ref var s = ref Segs[seg];
        if (ProtectedMode && (FlagsRest & RFlags.VM) == 0)
        {
            // A null selector (or an unusable register) cannot be used for data.
            if (s.Unusable || ((s.Selector & 0xFFFC) == 0 && seg != Seg.CS && !LongModeActive))
                throw seg == Seg.SS ? CpuFault.StackFault(0) : CpuFault.General(0);
            var attr = s.Attributes;
            if ((attr & SegmentRegister.AttrCode) != 0)
            {
                if (kind == AccessKind.Write) throw CpuFault.General(0);
                if (kind == AccessKind.Read && (attr & SegmentRegister.AttrReadable) == 0) throw CpuFault.General(0);
            }
            else if (kind == AccessKind.Write && (attr & SegmentRegister.AttrWritable) == 0)
                throw seg == Seg.SS ? CpuFault.StackFault(0) : CpuFault.General(0);
        }
        var last = offset + (ulong)size - 1;
        var limit = (ulong)s.Limit;
        bool ok;
        if ((s.Attributes & (SegmentRegister.AttrCode | SegmentRegister.AttrExpandDown)) == SegmentRegister.AttrExpandDown &&
            (s.Attributes & SegmentRegister.AttrS) != 0)
        {
            // Expand-down: valid offsets are (limit, top], top = 0xFFFF or 0xFFFFFFFF by the B bit.
            var top = s.Big ? 0xFFFF_FFFFUL : 0xFFFFUL;
            ok = offset > limit && last <= top && last >= offset;
        }
        else ok = last <= limit && last >= offset;
        if (!ok) throw seg == Seg.SS ? CpuFault.StackFault(0) : CpuFault.General(0);
        return (s.Base + offset) & 0xFFFF_FFFFUL;
    }

    public byte ReadMem8(int seg, ulong offset) => (byte)ReadLinear(SegmentedAddress(seg, offset, 1, AccessKind.Read), 1);
    public ushort ReadMem16(int seg, ulong offset) => (ushort)ReadLinear(SegmentedAddress(seg, offset, 2, AccessKind.Read), 2);
    public uint ReadMem32(int seg, ulong offset) => (uint)ReadLinear(SegmentedAddress(seg, offset, 4, AccessKind.Read), 4);
    public ulong ReadMem64(int seg, ulong offset) => ReadLinear(SegmentedAddress(seg, offset, 8, AccessKind.Read), 8);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadMem(int seg, ulong offset, int size) => ReadLinear(SegmentedAddress(seg, offset, size, AccessKind.Read), size);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteMem(int seg, ulong offset, int size, ulong value) =>
        WriteLinear(SegmentedAddress(seg, offset, size, AccessKind.Write), size, value);

    // ---- linear access ----

    /// <summary>Reads 1, 2, 4 or 8 bytes at a linear address.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadLinear(ulong la, int size)
    {
        if ((la & 0xFFF) <= (ulong)(0x1000 - size))
        {
            ref var e = ref TlbR[(int)(la >> 12) & TlbMask];
            if (e.Tag == (la & ~0xFFFUL) && e.Host != 0)
            {
                var p = (byte*)e.Host + (la & 0xFFF);
                return size switch
                {
                    1 => *p,
                    2 => *(ushort*)p,
                    4 => *(uint*)p,
                    _ => *(ulong*)p,
                };
            }
        }
        return ReadLinearSlow(la, size);
    }

    /// <summary>Writes 1, 2, 4 or 8 bytes at a linear address.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteLinear(ulong la, int size, ulong value)
    {
        if ((la & 0xFFF) <= (ulong)(0x1000 - size))
        {
            ref var e = ref TlbW[(int)(la >> 12) & TlbMask];
            if (e.Tag == (la & ~0xFFFUL) && e.Host != 0 && !Memory.IsCodePage(e.PhysPage >> 12))
            {
                var p = (byte*)e.Host + (la & 0xFFF);
                switch (size)
                {
                    case 1: *p = (byte)value; break;
                    case 2: *(ushort*)p = (ushort)value; break;
                    case 4: *(uint*)p = (uint)value; break;
                    default: *(ulong*)p = value; break;
                }
                return;
            }
        }
        WriteLinearSlow(la, size, value);
    }

    private ulong ReadLinearSlow(ulong la, int size)
    {
        if ((la & 0xFFF) > (ulong)(0x1000 - size))
        {
            // Split at the page boundary; both halves are translated before either is read.
            var firstLen = (int)(0x1000 - (la & 0xFFF));
            var p1 = Translate(la, AccessKind.Read, UserAccess);
            var p2 = Translate(la + (ulong)firstLen, AccessKind.Read, UserAccess);
            ulong v = 0;
            for (var i = 0; i < size; i++)
            {
                var pa = i < firstLen ? p1 + (ulong)i : p2 + (ulong)(i - firstLen);
                v |= PhysRead(pa, 1) << (8 * i);
            }
            return v;
        }
        var phys = Translate(la, AccessKind.Read, UserAccess);
        return PhysRead(phys, size);
    }

    private void WriteLinearSlow(ulong la, int size, ulong value)
    {
        if ((la & 0xFFF) > (ulong)(0x1000 - size))
        {
            var firstLen = (int)(0x1000 - (la & 0xFFF));
            var p1 = Translate(la, AccessKind.Write, UserAccess);
            var p2 = Translate(la + (ulong)firstLen, AccessKind.Write, UserAccess);
            for (var i = 0; i < size; i++)
            {
                var pa = i < firstLen ? p1 + (ulong)i : p2 + (ulong)(i - firstLen);
                PhysWrite(pa, 1, (value >> (8 * i)) & 0xFF);
            }
            return;
        }
        var phys = Translate(la, AccessKind.Write, UserAccess);
        PhysWrite(phys, size, value);
    }

    /// <summary>A physical read: RAM directly, anything else through the platform (MMIO).</summary>
    internal ulong PhysRead(ulong pa, int size)
    {
        var p = Memory.HostPointer(pa);
        if (p != null && Memory.IsRam(pa, (ulong)size))
        {
            return size switch
            {
                1 => *p,
                2 => *(ushort*)p,
                4 => *(uint*)p,
                _ => *(ulong*)p,
            };
        }
        return Platform.MmioRead(Id, pa, size);
    }

    internal void PhysWrite(ulong pa, int size, ulong value)
    {
        var p = Memory.HostPointer(pa);
        if (p != null && Memory.IsRam(pa, (ulong)size))
        {
            switch (size)
            {
                case 1: *p = (byte)value; break;
                case 2: *(ushort*)p = (ushort)value; break;
                case 4: *(uint*)p = (uint)value; break;
                default: *(ulong*)p = value; break;
            }
            if (Memory.IsCodePage(pa >> 12) || Memory.IsCodePage((pa + (ulong)size - 1) >> 12))
            {
                Memory.NoteWrite(pa, (ulong)size);
                // The running block may hold the bytes just written (self-modifying code).
                EndBlock = true;
            }
            return;
        }
        Platform.MmioWrite(Id, pa, size, value);
    }

    /// <summary>
    /// A host pointer for an aligned RAM access that does not cross a page, translated for writing (so
    /// LOCKed read-modify-writes can use host atomics); null when the target is MMIO or crosses a page.
    /// Code pages are invalidated first.
    /// </summary>
    internal byte* HostPointerForWrite(ulong la, int size)
    {
        if ((la & 0xFFF) > (ulong)(0x1000 - size)) return null;
        var phys = Translate(la, AccessKind.Write, UserAccess);
        var p = Memory.HostPointer(phys);
        if (p == null) return null;
        if (Memory.IsCodePage(phys >> 12)) { Memory.NoteWrite(phys, (ulong)size); EndBlock = true; }
        return p;
    }

    /// <summary>Reads bytes at a linear address (descriptor tables, FXSAVE areas, tests).</summary>
    public void ReadLinearBytes(ulong la, Span<byte> dest)
    {
        for (var i = 0; i < dest.Length; i++) dest[i] = (byte)ReadLinear(la + (ulong)i, 1);
    }

    public void WriteLinearBytes(ulong la, ReadOnlySpan<byte> src)
    {
        for (var i = 0; i < src.Length; i++) WriteLinear(la + (ulong)i, 1, src[i]);
    }

    /// <summary>Supervisor-mode read of a system structure (GDT, IDT, TSS), whatever the CPL.</summary>
    internal ulong ReadSystem(ulong la, int size)
    {
        var saved = ImplicitSupervisor;
        ImplicitSupervisor = true;
        try { return ReadLinearSlow(la, size); }
        finally { ImplicitSupervisor = saved; }
    }

    internal void WriteSystem(ulong la, int size, ulong value)
    {
        var saved = ImplicitSupervisor;
        ImplicitSupervisor = true;
        try { WriteLinearSlow(la, size, value); }
        finally { ImplicitSupervisor = saved; }
    }
}
