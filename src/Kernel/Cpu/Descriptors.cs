using System.Runtime.CompilerServices;

namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// One 8-byte GDT/LDT/IDT entry as stored in memory: a code or data segment, a system segment (LDT, TSS)
/// or a gate (SDM Vol. 3A, 3.4.5 and 3.5, 5.8.3, 6.11, 7.2.2). 16-byte long-mode system descriptors and
/// gates keep their upper half in <see cref="High"/>.
/// </summary>
internal readonly struct Descriptor(ulong raw, ulong high = 0)
{
    public readonly ulong Raw = raw;
    public readonly ulong High = high;

    public const ulong AccessedBit = 1UL << 40;

    public int Type => (int)(Raw >> 40) & 0xF;
    /// <summary>S = 0: an LDT, TSS or gate.</summary>
    public bool IsSystem => (Raw & (1UL << 44)) == 0;
    public int Dpl => (int)(Raw >> 45) & 3;
    public bool Present => (Raw & (1UL << 47)) != 0;
    public bool IsCode => !IsSystem && (Type & 8) != 0;
    public bool IsData => !IsSystem && (Type & 8) == 0;
    public bool IsConforming => IsCode && (Type & 4) != 0;
    public bool IsReadableCode => IsCode && (Type & 2) != 0;
    public bool IsWritableData => IsData && (Type & 2) != 0;
    /// <summary>L: a 64-bit code segment (in IA-32e mode).</summary>
    public bool Long => (Raw & (1UL << 53)) != 0;
    /// <summary>D/B: 32-bit default size.</summary>
    public bool Big => (Raw & (1UL << 54)) != 0;

    /// <summary>Segment limit in bytes after granularity scaling.</summary>
    public uint Limit
    {
        get
        {
            var limit = (uint)(Raw & 0xFFFF) | (uint)(Raw >> 32) & 0xF0000;
            return (Raw & (1UL << 55)) != 0 ? (limit << 12) | 0xFFF : limit;
        }
    }

    /// <summary>Segment base; for 16-byte system descriptors bits 32-63 come from the upper half.</summary>
    public ulong Base => ((Raw >> 16) & 0xFF_FFFF) | ((Raw >> 32) & 0xFF00_0000) | ((High & 0xFFFF_FFFF) << 32);

    // ---- gates ----
    public ushort GateSelector => (ushort)(Raw >> 16);
    /// <summary>Gate entry point; bits 32-63 from the upper half of a 16-byte gate.</summary>
    public ulong GateOffset => (Raw & 0xFFFF) | ((Raw >> 32) & 0xFFFF_0000) | ((High & 0xFFFF_FFFF) << 32);
    /// <summary>Parameter count of a 16/32-bit call gate (words or dwords copied to the new stack).</summary>
    public int GateParamCount => (int)(Raw >> 32) & 0x1F;
    /// <summary>Interrupt-stack-table index of a 64-bit interrupt or trap gate (0 = none).</summary>
    public int GateIst => (int)(Raw >> 32) & 7;

    public SegmentRegister ToSegment(ushort selector)
    {
        var s = SegmentRegister.FromDescriptor(selector, Raw);
        if (IsSystem) s.Base = Base;
        return s;
    }
}

/// <summary>System-descriptor types (S = 0), SDM Vol. 3A, Table 3-2.</summary>
internal static class SystemType
{
    public const int Tss16Available = 1, Ldt = 2, Tss16Busy = 3, CallGate16 = 4, TaskGate = 5;
    public const int InterruptGate16 = 6, TrapGate16 = 7, Tss32Available = 9, Tss32Busy = 0xB;
    public const int CallGate32 = 0xC, InterruptGate32 = 0xE, TrapGate32 = 0xF;
}

/// <summary>
/// The six segment registers, RSP, RIP and RFLAGS as they were before a control transfer began, so a
/// transfer that faults half-way (after loading CS or switching stacks) can be undone: the SDM requires a
/// faulting instruction or event delivery to leave the architectural state as it found it.
/// </summary>
internal struct ControlSnapshot
{
    [InlineArray(6)]
    private struct SegmentFile { private SegmentRegister _e; }

    private SegmentFile _segs;
    private ulong _rsp, _rip, _flags;

    public static ControlSnapshot Capture(SoftwareCpu cpu)
    {
        var s = new ControlSnapshot { _rsp = cpu.Gprs[Gpr.RSP], _rip = cpu.Rip, _flags = cpu.GetFlags() };
        for (var i = 0; i < 6; i++) s._segs[i] = cpu.Segs[i];
        return s;
    }

    public readonly void Restore(SoftwareCpu cpu)
    {
        for (var i = 0; i < 6; i++) cpu.Segs[i] = _segs[i];
        cpu.Gprs[Gpr.RSP] = _rsp;
        cpu.Rip = _rip;
        cpu.SetFlags(_flags);
        cpu.UpdateMode();
    }
}

/// <summary>
/// Descriptor-table reads and the selector checks shared by segment loads, far transfers and event delivery
/// (SDM Vol. 3A, chapters 3 and 5).
/// </summary>
public sealed partial class SoftwareCpu
{
    /// <summary>The error code for a selector (SDM 6.13): index and TI, EXT and IDT clear.</summary>
    internal static uint SelectorError(ushort selector) => (uint)(selector & 0xFFFC);

    internal static bool IsNullSelector(ushort selector) => (selector & 0xFFFC) == 0;

    /// <summary>
    /// Reads the descriptor a selector names in the GDT or LDT. Returns false if it lies beyond the table's
    /// limit (or the LDT is unusable). <paramref name="wide"/> reads a 16-byte long-mode system descriptor.
    /// </summary>
    internal bool TryReadDescriptor(ushort selector, out Descriptor descriptor, out ulong address, bool wide = false)
    {
        ulong tableBase;
        uint limit;
        if ((selector & 4) != 0)
        {
            if (Ldtr.Unusable) { descriptor = default; address = 0; return false; }
            tableBase = Ldtr.Base;
            limit = Ldtr.Limit;
        }
        else
        {
            tableBase = Gdtr.Base;
            limit = Gdtr.Limit;
        }
        var offset = (uint)(selector & 0xFFF8);
        if ((ulong)offset + (wide ? 15u : 7u) > limit) { descriptor = default; address = 0; return false; }
        address = tableBase + offset;
        if (!LongModeActive) address &= 0xFFFF_FFFF;
        var raw = ReadSystem(address, 8);
        descriptor = new Descriptor(raw, wide ? ReadSystem(address + 8, 8) : 0);
        return true;
    }

    /// <summary>Reads a descriptor or raises #GP(selector) when it lies beyond the table limit.</summary>
    internal Descriptor ReadDescriptor(ushort selector, out ulong address, bool wide = false)
    {
        if (!TryReadDescriptor(selector, out var d, out address, wide)) throw CpuFault.General(SelectorError(selector));
        return d;
    }

    /// <summary>Sets the accessed bit of a code or data descriptor in memory, as a segment load does.</summary>
    internal void MarkAccessed(ulong address, in Descriptor d)
    {
        if (d.IsSystem || (d.Raw & Descriptor.AccessedBit) != 0) return;
        WriteSystem(address + 5, 1, (d.Raw >> 40) & 0xFF | 1);
    }

    /// <summary>A segment register holding a null selector: unusable until reloaded.</summary>
    internal static SegmentRegister NullSegment(ushort selector, int dpl = 0) =>
        new() { Selector = selector, Attributes = SegmentRegister.AttrUnusable | (uint)dpl << 5 };

    /// <summary>
    /// The stack segment a privilege change to ring <paramref name="cpl"/> loads in IA-32e mode: a null
    /// selector whose RPL is the new CPL (SDM 6.14.4, 5.8.6).
    /// </summary>
    internal static SegmentRegister NullStackSegment(int cpl) =>
        new()
        {
            Selector = (ushort)cpl,
            Attributes = SegmentRegister.AttrUnusable | SegmentRegister.AttrS | SegmentRegister.AttrWritable |
                         SegmentRegister.AttrAccessed | SegmentRegister.AttrP | (uint)cpl << 5,
        };

    /// <summary>
    /// Loads SS, DS, ES, FS or GS as MOV, POP and LDS..LSS do (SDM Vol. 2, MOV "Operation"): in real and
    /// virtual-8086 mode only the selector and base change (base = selector × 16); in protected mode the
    /// descriptor is checked and cached, and the accessed bit set.
    /// </summary>
    internal void LoadSegment(int seg, ushort selector)
    {
        if (!ProtectedMode || V86Mode)
        {
            LoadRealModeSegment(seg, selector);
            return;
        }
        var rpl = selector & 3;
        if (IsNullSelector(selector))
        {
            if (seg == Seg.SS)
            {
                // 64-bit mode lets the kernel run with a null SS (SYSCALL, interrupts); elsewhere SS must be valid.
                if (!Is64 || Cpl == 3 || rpl != Cpl) throw CpuFault.General(0);
                Segs[Seg.SS] = NullStackSegment(rpl);
                return;
            }
            // A null data selector loads fine; using it faults. Intel clears the base too (AMD keeps it).
            Segs[seg] = NullSegment(selector);
            return;
        }
        var d = ReadDescriptor(selector, out var address);
        if (seg == Seg.SS)
        {
            if (rpl != Cpl || !d.IsWritableData || d.Dpl != Cpl) throw CpuFault.General(SelectorError(selector));
            if (!d.Present) throw CpuFault.StackFault(SelectorError(selector));
        }
        else
        {
            if (!d.IsData && !d.IsReadableCode) throw CpuFault.General(SelectorError(selector));
            // Data and non-conforming code need RPL and CPL both no less privileged than the DPL.
            if ((d.IsData || !d.IsConforming) && (rpl > d.Dpl || Cpl > d.Dpl))
                throw CpuFault.General(SelectorError(selector));
            if (!d.Present) throw CpuFault.NotPresent(SelectorError(selector));
        }
        MarkAccessed(address, d);
        Segs[seg] = SegmentRegister.FromDescriptor(selector, d.Raw | Descriptor.AccessedBit);
    }

    /// <summary>
    /// Real mode keeps the limit and attributes in the hidden cache (so "unreal mode" survives segment loads);
    /// virtual-8086 mode forces a 64 KiB read/write DPL-3 segment.
    /// </summary>
    private void LoadRealModeSegment(int seg, ushort selector)
    {
        ref var s = ref Segs[seg];
        s.Selector = selector;
        s.Base = (ulong)selector << 4;
        if (V86Mode)
        {
            s.Limit = 0xFFFF;
            s.Attributes = V86Attributes;
        }
        else
        {
            s.Attributes = (s.Attributes & ~SegmentRegister.AttrUnusable) | SegmentRegister.AttrP;
        }
    }

    /// <summary>Present, DPL 3, read/write accessed data: every segment in virtual-8086 mode.</summary>
    internal const uint V86Attributes = SegmentRegister.AttrP | SegmentRegister.AttrS | 3 << 5 |
                                        SegmentRegister.AttrWritable | SegmentRegister.AttrAccessed;

    /// <summary>CS in real mode after a far transfer: selector and base change, limit and attributes stay.</summary>
    internal void LoadRealModeCs(ushort selector)
    {
        ref var cs = ref Segs[Seg.CS];
        cs.Selector = selector;
        cs.Base = (ulong)selector << 4;
        if (V86Mode) { cs.Limit = 0xFFFF; cs.Attributes = V86Attributes | SegmentRegister.AttrCode; }
        UpdateMode();
    }

    /// <summary>Loads CS from a checked code descriptor with RPL set to the new CPL, then re-derives the mode.</summary>
    internal void LoadCodeSegment(ushort selector, in Descriptor d, ulong address, int cpl)
    {
        MarkAccessed(address, d);
        Segs[Seg.CS] = SegmentRegister.FromDescriptor((ushort)((selector & 0xFFFC) | cpl), d.Raw | Descriptor.AccessedBit);
        UpdateMode();
    }

    /// <summary>True when a code descriptor is not usable as a code segment in IA-32e mode (L and D both set).</summary>
    internal bool BadLongModeCode(in Descriptor d) => LongModeActive && d.Long && d.Big;

    /// <summary>
    /// The checks a far JMP or CALL applies to a code-segment target named directly (SDM JMP/CALL "Operation"):
    /// conforming needs DPL ≤ CPL, non-conforming needs RPL ≤ CPL and DPL = CPL.
    /// </summary>
    internal void CheckDirectCodeTarget(ushort selector, in Descriptor d)
    {
        if (d.IsConforming)
        {
            if (d.Dpl > Cpl) throw CpuFault.General(SelectorError(selector));
        }
        else if ((selector & 3) > Cpl || d.Dpl != Cpl) throw CpuFault.General(SelectorError(selector));
        if (BadLongModeCode(d)) throw CpuFault.General(SelectorError(selector));
        if (!d.Present) throw CpuFault.NotPresent(SelectorError(selector));
    }

    /// <summary>The entry offset must be inside the new code segment (or canonical for 64-bit code): else #GP(0).</summary>
    internal void CheckTargetOffset(in Descriptor cs, ulong offset)
    {
        if (LongModeActive && cs.Long)
        {
            if (!IsCanonical(offset)) throw CpuFault.General(0);
        }
        else if (offset > cs.Limit) throw CpuFault.General(0);
    }

    /// <summary>
    /// The stack for an inner privilege level from the current 16- or 32-bit TSS (SDM 6.12.1, 5.8.5):
    /// SS:ESP for ring <paramref name="dpl"/>; #TS(TSS selector) if the TSS is too short.
    /// </summary>
    internal (ushort Ss, uint Sp) ReadTssStack(int dpl)
    {
        var type = (int)(Tr.Attributes & 0xF);
        if (type is SystemType.Tss32Available or SystemType.Tss32Busy)
        {
            var at = (uint)(dpl << 3) + 4;
            if (at + 5 > Tr.Limit) throw CpuFault.InvalidTss(SelectorError(Tr.Selector));
            return ((ushort)ReadSystem(Tr.Base + at + 4, 2), (uint)ReadSystem(Tr.Base + at, 4));
        }
        else
        {
            var at = (uint)(dpl << 2) + 2;
            if (at + 3 > Tr.Limit) throw CpuFault.InvalidTss(SelectorError(Tr.Selector));
            return ((ushort)ReadSystem(Tr.Base + at + 2, 2), (uint)ReadSystem(Tr.Base + at, 2));
        }
    }

    /// <summary>RSPn (or ISTn when <paramref name="ist"/> is not 0) from the 64-bit TSS (SDM 7.7).</summary>
    internal ulong ReadTss64Stack(int dpl, int ist)
    {
        var at = ist != 0 ? 0x24u + (uint)(ist - 1) * 8 : 4u + (uint)dpl * 8;
        if (at + 7 > Tr.Limit) throw CpuFault.InvalidTss(SelectorError(Tr.Selector));
        return ReadSystem(Tr.Base + at, 8);
    }

    /// <summary>
    /// The checks on the stack segment taken from the TSS for a switch to ring <paramref name="cpl"/>
    /// (call gates and interrupts): #TS(selector) for a bad one, #SS(selector) if it is not present.
    /// </summary>
    internal SegmentRegister CheckInnerStack(ushort selector, int cpl)
    {
        if (IsNullSelector(selector)) throw CpuFault.InvalidTss(SelectorError(selector));
        if (!TryReadDescriptor(selector, out var d, out var address)) throw CpuFault.InvalidTss(SelectorError(selector));
        if ((selector & 3) != cpl || d.Dpl != cpl || !d.IsWritableData) throw CpuFault.InvalidTss(SelectorError(selector));
        if (!d.Present) throw CpuFault.StackFault(SelectorError(selector));
        MarkAccessed(address, d);
        return SegmentRegister.FromDescriptor(selector, d.Raw | Descriptor.AccessedBit);
    }

    /// <summary>
    /// The checks on the stack segment RET or IRET return to at an outer level <paramref name="rpl"/>:
    /// #GP(selector) for a bad one, #SS(selector) if not present. A null SS is allowed only when returning to
    /// 64-bit code below ring 3 (<paramref name="allowNull"/>).
    /// </summary>
    internal SegmentRegister CheckOuterStack(ushort selector, int rpl, bool allowNull)
    {
        if (IsNullSelector(selector))
        {
            if (!allowNull || rpl == 3 || (selector & 3) != rpl) throw CpuFault.General(0);
            return NullStackSegment(rpl);
        }
        var d = ReadDescriptor(selector, out var address);
        if ((selector & 3) != rpl || !d.IsWritableData || d.Dpl != rpl) throw CpuFault.General(SelectorError(selector));
        if (!d.Present) throw CpuFault.StackFault(SelectorError(selector));
        MarkAccessed(address, d);
        return SegmentRegister.FromDescriptor(selector, d.Raw | Descriptor.AccessedBit);
    }

    /// <summary>
    /// After a return to an outer privilege level, data segments the new CPL may not use become null
    /// (SDM RET/IRET: "FOR each of segment register ES, FS, GS, and DS").
    /// </summary>
    internal void NullInaccessibleDataSegments()
    {
        foreach (var seg in (ReadOnlySpan<int>)[Seg.ES, Seg.DS, Seg.FS, Seg.GS])
        {
            ref var s = ref Segs[seg];
            if (s.Unusable) continue;
            var conformingCode = s.IsCode && (s.Attributes & SegmentRegister.AttrConforming) != 0;
            if (!conformingCode && s.Dpl < Cpl)
            {
                s.Selector = 0;
                s.Attributes |= SegmentRegister.AttrUnusable;
            }
        }
    }
}
