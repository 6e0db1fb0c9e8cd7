namespace Actorvisor.Kernel.Cpu;

/// <summary>Why a hardware task switch happens; it decides busy bits, the back link and NT (SDM Vol. 3A, 7.3).</summary>
internal enum TaskSwitchReason : byte { Jump, Call, Iret, Interrupt }

/// <summary>
/// Hardware task switching with 32-bit TSSs (SDM Vol. 3A, chapter 7): JMP/CALL to a TSS or task gate,
/// interrupts through task gates (32-bit Linux takes #DF that way), and IRET with NT set. 16-bit (80286)
/// TSSs are not supported: switching to one raises #GP(selector). IA-32e mode has no task switching.
/// <para>
/// The switch has a commit point: faults before it (in the old task's context) leave nothing changed;
/// faults after it (a bad segment in the new task's TSS) belong to the new task, as the SDM requires, and
/// <see cref="TaskSwitchCommitted"/> tells the caller not to undo the switch before delivering them.
/// </para>
/// </summary>
public sealed partial class SoftwareCpu
{
    // 32-bit TSS layout (SDM Figure 7-2).
    private const uint TssLink = 0x00, TssCr3 = 0x1C, TssEip = 0x20, TssEflags = 0x24, TssGprs = 0x28;
    private const uint TssSegs = 0x48, TssLdt = 0x60, MinTss32Limit = 0x67;

    /// <summary>Set once a task switch has saved the old task: a fault from here on is the new task's.</summary>
    internal bool TaskSwitchCommitted;

    /// <summary>JMP or CALL to a TSS descriptor or a task gate (SDM JMP/CALL "TASK-GATE", "TASK-STATE-SEGMENT").</summary>
    internal void TaskSwitchFromInstruction(ushort selector, in Descriptor descriptor, ulong address, TaskSwitchReason reason)
    {
        // The privilege check applies to the descriptor named: the gate, or the TSS itself.
        if (descriptor.Dpl < Cpl || (selector & 3) > descriptor.Dpl) throw CpuFault.General(SelectorError(selector));
        if (descriptor.Type != SystemType.TaskGate)
        {
            TaskSwitch(selector, descriptor, address, reason, null);
            return;
        }
        if (!descriptor.Present) throw CpuFault.NotPresent(SelectorError(selector));
        var tssSelector = descriptor.GateSelector;
        var tss = ReadTaskGateTarget(tssSelector, 0);
        TaskSwitch(tssSelector, tss.Descriptor, tss.Address, reason, null);
    }

    /// <summary>An interrupt or exception through a task gate in the IDT; the error code goes on the new task's stack.</summary>
    internal void TaskSwitchThroughGate(ushort tssSelector, TaskSwitchReason reason, uint ext, uint? errorCode)
    {
        var tss = ReadTaskGateTarget(tssSelector, ext);
        TaskSwitch(tssSelector, tss.Descriptor, tss.Address, reason, errorCode);
    }

    /// <summary>IRET with NT set: back to the task named by the current TSS's back link (SDM IRET "TASK-RETURN").</summary>
    internal void TaskReturn()
    {
        var link = (ushort)ReadSystem(Tr.Base + TssLink, 2);
        if ((link & 4) != 0 || !TryReadDescriptor(link, out var d, out var address)) throw CpuFault.InvalidTss(SelectorError(link));
        if (!d.IsSystem || d.Type is not (SystemType.Tss32Busy or SystemType.Tss16Busy)) throw CpuFault.InvalidTss(SelectorError(link));
        TaskSwitch(link, d, address, TaskSwitchReason.Iret, null);
    }

    /// <summary>The TSS a task gate names: in the GDT, an available TSS (#GP(selector) otherwise).</summary>
    private (Descriptor Descriptor, ulong Address) ReadTaskGateTarget(ushort tssSelector, uint ext)
    {
        var err = SelectorError(tssSelector) | ext;
        if ((tssSelector & 4) != 0 || !TryReadDescriptor(tssSelector, out var tss, out var address)) throw CpuFault.General(err);
        if (!tss.IsSystem || tss.Type is not (SystemType.Tss32Available or SystemType.Tss16Available)) throw CpuFault.General(err);
        return (tss, address);
    }

    private void TaskSwitch(ushort selector, Descriptor tss, ulong tssAddress, TaskSwitchReason reason, uint? errorCode)
    {
        TaskSwitchCommitted = false;
        var err = SelectorError(selector);
        if (tss.Type is SystemType.Tss16Available or SystemType.Tss16Busy) throw CpuFault.General(err); // 80286 TSS: not supported
        if (!tss.Present) throw CpuFault.NotPresent(err);
        if (tss.Limit < MinTss32Limit) throw CpuFault.InvalidTss(err);
        var busy = tss.Type == SystemType.Tss32Busy;
        if (reason == TaskSwitchReason.Iret ? !busy : busy) throw reason == TaskSwitchReason.Iret ? CpuFault.InvalidTss(err) : CpuFault.General(err);
        if ((Tr.Attributes & 0xF) is not (SystemType.Tss32Busy or SystemType.Tss32Available) || Tr.Limit < MinTss32Limit)
            throw CpuFault.InvalidTss(SelectorError(Tr.Selector));

        // Read the whole new task before touching the old one: a page fault here leaves everything as it was.
        var newBase = tss.Base;
        var cr3 = ReadSystem(newBase + TssCr3, 4);
        var eip = ReadSystem(newBase + TssEip, 4);
        var eflags = ReadSystem(newBase + TssEflags, 4);
        Span<uint> gprs = stackalloc uint[8];
        for (var k = 0; k < 8; k++) gprs[k] = (uint)ReadSystem(newBase + TssGprs + (uint)k * 4, 4);
        Span<ushort> segs = stackalloc ushort[6];
        for (var k = 0; k < 6; k++) segs[k] = (ushort)ReadSystem(newBase + TssSegs + (uint)k * 4, 2);
        var ldt = (ushort)ReadSystem(newBase + TssLdt, 2);

        // Save the old task: EIP is where it resumes (after JMP/CALL/IRET, or where the interrupt hit).
        var oldBase = Tr.Base;
        var flags = GetFlags();
        if (reason == TaskSwitchReason.Iret) flags &= ~RFlags.NT;
        WriteSystem(oldBase + TssEip, 4, (uint)Rip);
        WriteSystem(oldBase + TssEflags, 4, (uint)flags);
        for (var k = 0; k < 8; k++) WriteSystem(oldBase + TssGprs + (uint)k * 4, 4, (uint)Gprs[k]);
        for (var k = 0; k < 6; k++) WriteSystem(oldBase + TssSegs + (uint)k * 4, 2, Segs[k].Selector);

        // Busy bits and the back link: JMP and IRET leave the old task, CALL and interrupts nest in it.
        if (reason is TaskSwitchReason.Jump or TaskSwitchReason.Iret && TryReadDescriptor(Tr.Selector, out var old, out var oldAddress))
            WriteSystem(oldAddress + 5, 1, (old.Raw >> 40) & 0xFF & ~2UL);
        if (reason is TaskSwitchReason.Call or TaskSwitchReason.Interrupt)
        {
            WriteSystem(newBase + TssLink, 2, Tr.Selector);
            eflags |= RFlags.NT;
        }
        if (reason != TaskSwitchReason.Iret) WriteSystem(tssAddress + 5, 1, ((tss.Raw >> 40) & 0xFF) | 2);

        // ---- commit: from here the new task is current ----
        TaskSwitchCommitted = true;
        Tr = new Descriptor(tss.Raw | 2UL << 40).ToSegment(selector);
        Cr0 |= Cpu.Cr0.TS;
        if (PagingEnabled)
        {
            // PAE paging reloads the PDPTE registers with CR3, as MOV to CR3 does (SDM Vol. 3A 4.4.1).
            if (PaeLegacyPaging)
            {
                Span<ulong> pdptes = stackalloc ulong[4];
                if (!TryReadPdptes(cr3, pdptes)) throw CpuFault.General(0);
                SetPdptes(pdptes, cr3);
            }
            Cr3 = cr3;
            FlushTlb(includeGlobal: false);
        }
        for (var k = 0; k < 8; k++) Gprs[k] = gprs[k];
        Rip = eip;
        SetFlags(eflags);
        LoadTaskLdt(ldt);
        if ((eflags & RFlags.VM) != 0)
        {
            for (var k = 0; k < 6; k++)
                Segs[k] = new SegmentRegister { Selector = segs[k], Base = (ulong)segs[k] << 4, Limit = 0xFFFF, Attributes = V86Attributes };
            UpdateMode();
        }
        else LoadTaskSegments(segs);
        CheckCodeLimit(Rip, 1);
        if (errorCode is { } e) Push(e, 4);
        TaskSwitchCommitted = false;
        EndBlock = true;
    }

    /// <summary>LDTR of the new task: null, or an LDT descriptor in the GDT; #TS(selector) otherwise.</summary>
    private void LoadTaskLdt(ushort selector)
    {
        if (IsNullSelector(selector))
        {
            Ldtr = NullSegment(selector);
            return;
        }
        if ((selector & 4) != 0 || !TryReadDescriptor(selector, out var d, out _) || !d.IsSystem || d.Type != SystemType.Ldt ||
            !d.Present)
            throw CpuFault.InvalidTss(SelectorError(selector));
        Ldtr = d.ToSegment(selector);
    }

    /// <summary>
    /// CS, then SS and the data segments of the new task, with the checks of SDM 7.3 step 12: a bad
    /// descriptor is #TS(selector), a missing one #NP (#SS for the stack).
    /// </summary>
    private void LoadTaskSegments(ReadOnlySpan<ushort> segs)
    {
        var csSel = segs[Seg.CS];
        if (IsNullSelector(csSel) || !TryReadDescriptor(csSel, out var cs, out var csAddress) || !cs.IsCode ||
            (cs.IsConforming ? cs.Dpl > (csSel & 3) : cs.Dpl != (csSel & 3)) || BadLongModeCode(cs))
            throw CpuFault.InvalidTss(SelectorError(csSel));
        if (!cs.Present) throw CpuFault.NotPresent(SelectorError(csSel));
        LoadCodeSegment(csSel, cs, csAddress, csSel & 3);
        foreach (var seg in (ReadOnlySpan<int>)[Seg.SS, Seg.ES, Seg.DS, Seg.FS, Seg.GS])
        {
            try
            {
                LoadSegment(seg, segs[seg]);
            }
            catch (CpuFault f) when (f.Vector == Vectors.GP)
            {
                // The descriptor checks of a segment load, reported as the TSS being invalid.
                throw CpuFault.InvalidTss(SelectorError(segs[seg]));
            }
        }
    }
}
