using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Far JMP/CALL/RET, INT n/INT3/INTO/INT1 and IRET in every mode, with call gates, privilege changes and
/// task switches (SDM Vol. 2 JMP, CALL, RET, INT n, IRET; Vol. 3A 5.8, 6.12, 6.14, 7.3).
/// Every handler that can fault after it has started changing state (loaded CS, switched stacks) undoes
/// its work through a <see cref="ControlSnapshot"/> before the fault leaves it.
/// </summary>
internal static unsafe class FarTransfers
{
    public static void Register(Dispatch.HandlerTable t)
    {
        foreach (var c in (ReadOnlySpan<Code>)[Code.Jmp_ptr1616, Code.Jmp_ptr1632, Code.Jmp_m1616, Code.Jmp_m1632, Code.Jmp_m1664])
            t.Set(c, &JmpFarHandler);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Call_ptr1616, Code.Call_ptr1632, Code.Call_m1616, Code.Call_m1632, Code.Call_m1664])
            t.Set(c, &CallFarHandler);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Retfw, Code.Retfw_imm16, Code.Retfd, Code.Retfd_imm16, Code.Retfq, Code.Retfq_imm16])
            t.Set(c, &RetFar);
        t.Set(Code.Iretw, &Iret);
        t.Set(Code.Iretd, &Iret);
        t.Set(Code.Iretq, &Iret);
        t.Set(Code.Int_imm8, &IntN);
        t.Set(Code.Int3, &Int3);
        t.Set(Code.Into, &Into);
        t.Set(Code.Int1, &Int1);
    }

    private static void JmpFarHandler(SoftwareCpu cpu, in Instruction i) => JmpFar(cpu, in i);
    private static void CallFarHandler(SoftwareCpu cpu, in Instruction i) => CallFar(cpu, in i);

    // ---- operands ----

    /// <summary>The selector and offset of a far pointer operand (ptr16:16/32 immediate or m16:16/32/64), and the offset size.</summary>
    private static (ushort Selector, ulong Offset, int Size) FarPointer(SoftwareCpu cpu, in Instruction i)
    {
        switch (i.Op0Kind)
        {
            case OpKind.FarBranch16: return (i.FarBranchSelector, i.FarBranch16, 2);
            case OpKind.FarBranch32: return (i.FarBranchSelector, i.FarBranch32, 4);
        }
        var size = i.MemorySize switch { MemorySize.SegPtr16 => 2, MemorySize.SegPtr32 => 4, _ => 8 };
        var la = cpu.MemoryLinear(in i, size + 2, AccessKind.Read);
        var offset = cpu.ReadLinear(la, size);
        var selector = (ushort)cpu.ReadLinear(la + (ulong)size, 2);
        return (selector, offset, size);
    }

    /// <summary>
    /// A fault in a far transfer: undo it and let the fault leave the instruction, unless a task switch
    /// had already committed, in which case the fault belongs to the new task and is delivered there.
    /// </summary>
    private static void Undo(SoftwareCpu cpu, in ControlSnapshot before, CpuFault fault)
    {
        if (cpu.TaskSwitchCommitted)
        {
            cpu.TaskSwitchCommitted = false;
            cpu.DeliverEvent(fault.Vector, EventKind.Fault, fault.ErrorCode, fault.Address);
            return;
        }
        before.Restore(cpu);
        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(fault);
    }

    private static ulong Truncate(ulong v, int size) => size switch { 2 => (ushort)v, 4 => (uint)v, _ => v };

    /// <summary>RSP after releasing <paramref name="bytes"/> with the current stack-address size.</summary>
    private static ulong StackPlus(SoftwareCpu cpu, ulong bytes)
    {
        var rsp = cpu.Gprs[Gpr.RSP];
        return cpu.StackAddressSize switch
        {
            8 => rsp + bytes,
            4 => (uint)(rsp + bytes),
            _ => (rsp & ~0xFFFFUL) | (ushort)(rsp + bytes),
        };
    }

    private static bool RealOrV86(SoftwareCpu cpu) => !cpu.ProtectedMode || cpu.V86Mode;

    // ---- JMP far ----

    public static void JmpFar(SoftwareCpu cpu, in Instruction i)
    {
        var (selector, offset, size) = FarPointer(cpu, in i);
        if (RealOrV86(cpu))
        {
            // Real mode keeps the CS limit: a target beyond it faults before CS changes.
            if (offset > cpu.Segs[Seg.CS].Limit) throw CpuFault.General(0);
            cpu.LoadRealModeCs(selector);
            cpu.Rip = offset;
            return;
        }
        var before = ControlSnapshot.Capture(cpu);
        try { JmpProtected(cpu, selector, offset, size); }
        catch (CpuFault f) { Undo(cpu, before, f); }
    }

    private static void JmpProtected(SoftwareCpu cpu, ushort selector, ulong offset, int size)
    {
        if (SoftwareCpu.IsNullSelector(selector)) throw CpuFault.General(0);
        var d = cpu.ReadDescriptor(selector, out var address);
        if (d.IsCode)
        {
            cpu.CheckDirectCodeTarget(selector, d);
            var target = Truncate(offset, size);
            cpu.CheckTargetOffset(d, target);
            cpu.LoadCodeSegment(selector, d, address, cpu.Cpl);
            cpu.Rip = target;
            return;
        }
        if (!d.IsSystem) throw CpuFault.General(SoftwareCpu.SelectorError(selector));
        switch (d.Type)
        {
            case SystemType.CallGate16:
            case SystemType.CallGate32:
            {
                var gate = ReadCallGate(cpu, selector, d, out var cs, out var csAddress, out var gateSize);
                // JMP never changes privilege: the gate's code segment must be reachable at this CPL.
                if (cs.IsConforming ? cs.Dpl > cpu.Cpl : cs.Dpl != cpu.Cpl)
                    throw CpuFault.General(SoftwareCpu.SelectorError(gate.GateSelector));
                var target = Truncate(gate.GateOffset, gateSize);
                cpu.CheckTargetOffset(cs, target);
                cpu.LoadCodeSegment(gate.GateSelector, cs, csAddress, cpu.Cpl);
                cpu.Rip = target;
                return;
            }
            case SystemType.TaskGate:
            case SystemType.Tss16Available:
            case SystemType.Tss32Available:
                if (cpu.LongModeActive) throw CpuFault.General(SoftwareCpu.SelectorError(selector));
                cpu.TaskSwitchFromInstruction(selector, d, address, TaskSwitchReason.Jump);
                return;
            default:
                throw CpuFault.General(SoftwareCpu.SelectorError(selector));
        }
    }

    /// <summary>
    /// Reads and checks a call gate and the code segment it names (SDM CALL "CALL-GATE"). In IA-32e mode only
    /// 16-byte 64-bit call gates exist.
    /// </summary>
    private static Descriptor ReadCallGate(SoftwareCpu cpu, ushort selector, Descriptor d, out Descriptor cs,
        out ulong csAddress, out int gateSize)
    {
        var err = SoftwareCpu.SelectorError(selector);
        if (cpu.LongModeActive)
        {
            if (d.Type != SystemType.CallGate32) throw CpuFault.General(err);
            d = cpu.ReadDescriptor(selector, out _, wide: true);
            // The upper half's type field must be 0 so a legacy descriptor is not misread as a gate's tail.
            if (((d.High >> 40) & 0x1F) != 0) throw CpuFault.General(err);
            gateSize = 8;
        }
        else gateSize = d.Type == SystemType.CallGate32 ? 4 : 2;
        if (d.Dpl < cpu.Cpl || (selector & 3) > d.Dpl) throw CpuFault.General(err);
        if (!d.Present) throw CpuFault.NotPresent(err);
        var csSel = d.GateSelector;
        if (SoftwareCpu.IsNullSelector(csSel)) throw CpuFault.General(0);
        cs = cpu.ReadDescriptor(csSel, out csAddress);
        var csErr = SoftwareCpu.SelectorError(csSel);
        if (!cs.IsCode || cs.Dpl > cpu.Cpl) throw CpuFault.General(csErr);
        if (cpu.LongModeActive && (!cs.Long || cs.Big)) throw CpuFault.General(csErr);
        if (!cs.Present) throw CpuFault.NotPresent(csErr);
        return d;
    }

    // ---- CALL far ----

    public static void CallFar(SoftwareCpu cpu, in Instruction i)
    {
        var (selector, offset, size) = FarPointer(cpu, in i);
        var before = ControlSnapshot.Capture(cpu);
        try
        {
            if (RealOrV86(cpu))
            {
                if (offset > cpu.Segs[Seg.CS].Limit) throw CpuFault.General(0);
                cpu.Push(cpu.Segs[Seg.CS].Selector, size);
                cpu.Push(cpu.Rip, size);
                cpu.LoadRealModeCs(selector);
                cpu.Rip = offset;
                return;
            }
            CallProtected(cpu, selector, offset, size);
        }
        catch (CpuFault f) { Undo(cpu, before, f); }
    }

    private static void CallProtected(SoftwareCpu cpu, ushort selector, ulong offset, int size)
    {
        if (SoftwareCpu.IsNullSelector(selector)) throw CpuFault.General(0);
        var d = cpu.ReadDescriptor(selector, out var address);
        if (d.IsCode)
        {
            cpu.CheckDirectCodeTarget(selector, d);
            var target = Truncate(offset, size);
            cpu.CheckTargetOffset(d, target);
            // The return address goes on the caller's stack, with the caller's stack size.
            cpu.Push(cpu.Segs[Seg.CS].Selector, size);
            cpu.Push(cpu.Rip, size);
            cpu.LoadCodeSegment(selector, d, address, cpu.Cpl);
            cpu.Rip = target;
            return;
        }
        if (!d.IsSystem) throw CpuFault.General(SoftwareCpu.SelectorError(selector));
        switch (d.Type)
        {
            case SystemType.CallGate16:
            case SystemType.CallGate32:
                CallThroughGate(cpu, selector, d);
                return;
            case SystemType.TaskGate:
            case SystemType.Tss16Available:
            case SystemType.Tss32Available:
                if (cpu.LongModeActive) throw CpuFault.General(SoftwareCpu.SelectorError(selector));
                cpu.TaskSwitchFromInstruction(selector, d, address, TaskSwitchReason.Call);
                return;
            default:
                throw CpuFault.General(SoftwareCpu.SelectorError(selector));
        }
    }

    private static void CallThroughGate(SoftwareCpu cpu, ushort selector, Descriptor d)
    {
        var gate = ReadCallGate(cpu, selector, d, out var cs, out var csAddress, out var gateSize);
        var csSel = gate.GateSelector;
        var target = Truncate(gate.GateOffset, gateSize);
        var oldCs = cpu.Segs[Seg.CS].Selector;
        var oldRip = cpu.Rip;

        if (cs.IsConforming || cs.Dpl == cpu.Cpl)
        {
            cpu.CheckTargetOffset(cs, target);
            cpu.Push(oldCs, gateSize);
            cpu.Push(oldRip, gateSize);
            cpu.LoadCodeSegment(csSel, cs, csAddress, cpu.Cpl);
            cpu.Rip = target;
            return;
        }

        // More privileged, non-conforming: switch to the inner stack from the TSS (SDM 5.8.5).
        var newCpl = cs.Dpl;
        var oldSs = cpu.Segs[Seg.SS].Selector;
        var oldSp = cpu.Gprs[Gpr.RSP];
        cpu.CheckTargetOffset(cs, target);
        if (gateSize == 8)
        {
            var rsp = cpu.ReadTss64Stack(newCpl, 0);
            if (!SoftwareCpu.IsCanonical(rsp)) throw CpuFault.StackFault(0);
            cpu.LoadCodeSegment(csSel, cs, csAddress, newCpl);
            cpu.Segs[Seg.SS] = SoftwareCpu.NullStackSegment(newCpl);
            cpu.Gprs[Gpr.RSP] = rsp;
            cpu.Push(oldSs, 8);
            cpu.Push(oldSp, 8);
            cpu.Push(oldCs, 8);
            cpu.Push(oldRip, 8);
            cpu.Rip = target;
            return;
        }

        var (ssSel, sp) = cpu.ReadTssStack(newCpl);
        var newSs = cpu.CheckInnerStack(ssSel, newCpl);
        // Parameters are read from the caller's stack with the caller's privilege before anything switches.
        var count = gate.GateParamCount;
        Span<uint> parameters = stackalloc uint[count];
        for (var k = 0; k < count; k++) parameters[k] = (uint)cpu.PeekStack((ulong)(k * gateSize), gateSize);
        cpu.Segs[Seg.SS] = newSs;
        cpu.Gprs[Gpr.RSP] = sp;
        cpu.LoadCodeSegment(csSel, cs, csAddress, newCpl);
        try
        {
            cpu.Push(oldSs, gateSize);
            cpu.Push(oldSp, gateSize);
            for (var k = count - 1; k >= 0; k--) cpu.Push(parameters[k], gateSize);
            cpu.Push(oldCs, gateSize);
            cpu.Push(oldRip, gateSize);
        }
        catch (CpuFault f) when (f.Vector == Vectors.SS && f.ErrorCode == 0)
        {
            throw CpuFault.StackFault(SoftwareCpu.SelectorError(ssSel));
        }
        cpu.Rip = target;
    }

    // ---- RET far ----

    private static void RetFar(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.Code switch
        {
            Code.Retfw or Code.Retfw_imm16 => 2,
            Code.Retfd or Code.Retfd_imm16 => 4,
            _ => 8,
        };
        var release = i.Op0Kind == OpKind.Immediate16 ? i.Immediate16 : 0u;
        var ip = Truncate(cpu.PeekStack(0, size), size);
        var selector = (ushort)cpu.PeekStack((ulong)size, size);
        if (RealOrV86(cpu))
        {
            if (ip > cpu.Segs[Seg.CS].Limit) throw CpuFault.General(0);
            cpu.Gprs[Gpr.RSP] = StackPlus(cpu, (ulong)(2 * size) + release);
            cpu.LoadRealModeCs(selector);
            cpu.Rip = ip;
            return;
        }
        var before = ControlSnapshot.Capture(cpu);
        try { RetProtected(cpu, selector, ip, size, release); }
        catch (CpuFault) { before.Restore(cpu); throw; }
    }

    /// <summary>The checks RET and IRET apply to the code segment they return to (SDM RET "Operation").</summary>
    private static Descriptor CheckReturnCode(SoftwareCpu cpu, ushort selector, out ulong address)
    {
        if (SoftwareCpu.IsNullSelector(selector)) throw CpuFault.General(0);
        var d = cpu.ReadDescriptor(selector, out address);
        var err = SoftwareCpu.SelectorError(selector);
        var rpl = selector & 3;
        if (!d.IsCode || rpl < cpu.Cpl) throw CpuFault.General(err);
        if (d.IsConforming ? d.Dpl > rpl : d.Dpl != rpl) throw CpuFault.General(err);
        if (cpu.BadLongModeCode(d)) throw CpuFault.General(err);
        if (!d.Present) throw CpuFault.NotPresent(err);
        return d;
    }

    private static void RetProtected(SoftwareCpu cpu, ushort selector, ulong ip, int size, uint release)
    {
        var cs = CheckReturnCode(cpu, selector, out var address);
        var rpl = selector & 3;
        if (rpl == cpu.Cpl)
        {
            cpu.CheckTargetOffset(cs, ip);
            cpu.Gprs[Gpr.RSP] = StackPlus(cpu, (ulong)(2 * size) + release);
            cpu.LoadCodeSegment(selector, cs, address, rpl);
            cpu.Rip = ip;
            return;
        }
        // Return to an outer privilege level: the caller's SS:ESP sit above the released parameters.
        var at = (ulong)(2 * size) + release;
        var sp = cpu.PeekStack(at, size);
        var ssSel = (ushort)cpu.PeekStack(at + (ulong)size, size);
        var ss = cpu.CheckOuterStack(ssSel, rpl, allowNull: cpu.LongModeActive && cs.Long);
        cpu.CheckTargetOffset(cs, ip);
        cpu.LoadCodeSegment(selector, cs, address, rpl);
        cpu.Segs[Seg.SS] = ss;
        cpu.Gprs[Gpr.RSP] = 0;
        cpu.SetStackPointer(Truncate(sp, size) + release);
        cpu.NullInaccessibleDataSegments();
        cpu.Rip = ip;
    }

    // ---- IRET ----

    /// <summary>EFLAGS bits IRET and POPF load in real mode with a 32-bit operand (all but VM, VIF, VIP).</summary>
    private const ulong RealModeIretMask = 0x257FD5;

    private static void Iret(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.Code switch { Code.Iretw => 2, Code.Iretd => 4, _ => 8 };
        if (!cpu.ProtectedMode) IretReal(cpu, size, v86: false);
        else if (cpu.V86Mode)
        {
            // Without CR4.VME, IRET in virtual-8086 mode is IOPL-sensitive (SDM 20.2.7).
            if (cpu.Iopl < 3) throw CpuFault.General(0);
            IretReal(cpu, size, v86: true);
        }
        else
        {
            var before = ControlSnapshot.Capture(cpu);
            try { IretProtected(cpu, size); }
            catch (CpuFault f) { Undo(cpu, before, f); }
        }
        // Any IRET ends the NMI-blocking window that NMI delivery opened (SDM 6.7.1).
        cpu.NmiBlocked = false;
        cpu.EndBlock = true;
    }

    private static void IretReal(SoftwareCpu cpu, int size, bool v86)
    {
        var ip = Truncate(cpu.PeekStack(0, size), size);
        var selector = (ushort)cpu.PeekStack((ulong)size, size);
        var popped = cpu.PeekStack((ulong)(2 * size), size);
        if (ip > cpu.Segs[Seg.CS].Limit) throw CpuFault.General(0);
        var old = cpu.GetFlags();
        // Virtual-8086 code cannot change IOPL (nor VM, VIF, VIP, which no real-mode IRET touches).
        var keep = v86 ? RFlags.IOPL : 0;
        var flags = size == 2
            ? (old & ~0xFFFFUL) | (popped & 0xFFFF & ~keep) | (old & keep)
            : (popped & RealModeIretMask & ~keep) | (old & (RFlags.VM | RFlags.VIF | RFlags.VIP | keep));
        cpu.Gprs[Gpr.RSP] = StackPlus(cpu, (ulong)(3 * size));
        cpu.SetFlags(flags);
        cpu.LoadRealModeCs(selector);
        cpu.Rip = ip;
    }

    /// <summary>The RFLAGS a protected-mode IRET leaves (SDM IRET "RETURN-TO-SAME/OUTER-PRIVILEGE-LEVEL").</summary>
    private static ulong IretFlags(ulong current, ulong popped, int size, int cpl, int iopl)
    {
        var changeable = RFlags.Arith | RFlags.TF | RFlags.DF | RFlags.NT;
        if (size >= 4) changeable |= RFlags.RF | RFlags.AC | RFlags.ID;
        if (cpl <= iopl) changeable |= RFlags.IF;
        if (cpl == 0)
        {
            changeable |= RFlags.IOPL;
            if (size >= 4) changeable |= RFlags.VIF | RFlags.VIP;
        }
        return (current & ~changeable) | (popped & changeable);
    }

    private static void IretProtected(SoftwareCpu cpu, int size)
    {
        var current = cpu.GetFlags();
        if ((current & RFlags.NT) != 0)
        {
            // A nested task returns to the task in the TSS back link; IA-32e mode has no task switching.
            if (cpu.LongModeActive) throw CpuFault.General(0);
            cpu.TaskReturn();
            return;
        }
        var ip = Truncate(cpu.PeekStack(0, size), size);
        var selector = (ushort)cpu.PeekStack((ulong)size, size);
        var popped = cpu.PeekStack((ulong)(2 * size), size);
        if (size == 2) popped = (current & ~0xFFFFUL) | (popped & 0xFFFF);

        if ((popped & RFlags.VM) != 0 && cpu.Cpl == 0 && size == 4 && !cpu.LongModeActive)
        {
            ReturnToV86(cpu, (uint)ip, selector, popped);
            return;
        }

        var cs = CheckReturnCode(cpu, selector, out var address);
        var rpl = selector & 3;
        var oldCpl = cpu.Cpl;
        var flags = IretFlags(current, popped, size, oldCpl, cpu.Iopl);
        // IRET in 64-bit mode always pops SS:RSP, even without a privilege change.
        if (rpl == oldCpl && !cpu.Is64)
        {
            cpu.CheckTargetOffset(cs, ip);
            cpu.Gprs[Gpr.RSP] = StackPlus(cpu, (ulong)(3 * size));
            cpu.LoadCodeSegment(selector, cs, address, rpl);
            cpu.SetFlags(flags);
            cpu.Rip = ip;
            return;
        }
        var sp = cpu.PeekStack((ulong)(3 * size), size);
        var ssSel = (ushort)cpu.PeekStack((ulong)(4 * size), size);
        var ss = cpu.CheckOuterStack(ssSel, rpl, allowNull: cpu.LongModeActive && cs.Long);
        cpu.CheckTargetOffset(cs, ip);
        cpu.LoadCodeSegment(selector, cs, address, rpl);
        cpu.Segs[Seg.SS] = ss;
        cpu.SetFlags(flags);
        cpu.Gprs[Gpr.RSP] = 0;
        cpu.SetStackPointer(Truncate(sp, size));
        if (rpl > oldCpl) cpu.NullInaccessibleDataSegments();
        cpu.Rip = ip;
    }

    /// <summary>IRET from ring 0 to a virtual-8086 task: the frame also holds ESP, SS, ES, DS, FS and GS.</summary>
    private static void ReturnToV86(SoftwareCpu cpu, uint ip, ushort cs, ulong flags)
    {
        Span<ushort> segs = stackalloc ushort[4];
        var esp = (uint)cpu.PeekStack(12, 4);
        var ss = (ushort)cpu.PeekStack(16, 4);
        for (var k = 0; k < 4; k++) segs[k] = (ushort)cpu.PeekStack((ulong)(20 + 4 * k), 4); // ES, DS, FS, GS
        cpu.SetFlags(flags);
        cpu.Segs[Seg.CS] = V86Segment(cs, code: true);
        cpu.Segs[Seg.SS] = V86Segment(ss);
        cpu.Segs[Seg.ES] = V86Segment(segs[0]);
        cpu.Segs[Seg.DS] = V86Segment(segs[1]);
        cpu.Segs[Seg.FS] = V86Segment(segs[2]);
        cpu.Segs[Seg.GS] = V86Segment(segs[3]);
        cpu.Gprs[Gpr.RSP] = esp;
        cpu.Rip = ip & 0xFFFF;
        cpu.UpdateMode();
    }

    private static SegmentRegister V86Segment(ushort selector, bool code = false) =>
        new()
        {
            Selector = selector, Base = (ulong)selector << 4, Limit = 0xFFFF,
            Attributes = SoftwareCpu.V86Attributes | (code ? SegmentRegister.AttrCode : 0),
        };

    // ---- INT n, INT3, INTO, INT1 ----

    private static void IntN(SoftwareCpu cpu, in Instruction i) =>
        cpu.DeliverFromInstruction(i.Immediate8, EventKind.Software);

    private static void Int3(SoftwareCpu cpu, in Instruction i) =>
        cpu.DeliverFromInstruction(Vectors.BP, EventKind.SoftwareException);

    private static void Into(SoftwareCpu cpu, in Instruction i)
    {
        if ((cpu.GetFlags() & RFlags.OF) != 0) cpu.DeliverFromInstruction(Vectors.OF, EventKind.SoftwareException);
    }

    /// <summary>INT1 (ICEBP) raises #DB like a hardware debug trap: no gate DPL check, EXT set on nested faults.</summary>
    private static void Int1(SoftwareCpu cpu, in Instruction i) =>
        cpu.DeliverFromInstruction(Vectors.DB, EventKind.Trap);
}
