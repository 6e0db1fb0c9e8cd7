namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// Event delivery through the IVT (real mode) and the IDT (protected and long mode), SDM Vol. 3A ch. 6:
/// gate checks, privilege changes with the TSS stacks, IST stacks, error codes, and the rules for a fault
/// raised while an event is being delivered (Table 6-5: serial handling, #DF, shutdown).
/// </summary>
public sealed partial class SoftwareCpu
{
    /// <summary>
    /// Delivers an exception, interrupt or NMI at the current RIP (the run loop has already set RIP to the
    /// faulting instruction for faults, to the next one for traps and interrupts).
    /// Throws <see cref="TripleFaultException"/> on shutdown.
    /// </summary>
    internal void DeliverEvent(int vector, EventKind kind, uint? errorCode, ulong address = 0) =>
        DeliverNested(vector, kind, errorCode, address, Rip);

    /// <summary>
    /// INT n, INT3, INTO and INT1 from inside their handler (RIP already past the instruction). A fault while
    /// delivering them is a fault of the instruction, so it reports the instruction's own address.
    /// </summary>
    internal void DeliverFromInstruction(int vector, EventKind kind) =>
        DeliverNested(vector, kind, null, 0, CurrentIp);

    /// <summary>
    /// Delivers one event; a fault during delivery undoes what delivery did and is classified against the
    /// event being delivered (SDM 6.15, Table 6-5). <paramref name="restartIp"/> is the return address the
    /// second event reports.
    /// </summary>
    private void DeliverNested(int vector, EventKind kind, uint? errorCode, ulong address, ulong restartIp)
    {
        // Table 6-5 bounds the chain (benign → contributory → #PF → #DF → shutdown); the cap only guards
        // the host against a classification bug ever looping forever on guest input.
        for (var round = 0; ; round++)
        {
            if (round == 8) throw new TripleFaultException($"event delivery did not settle ({CpuFault.Name(vector)})");
            var before = ControlSnapshot.Capture(this);
            try
            {
                DeliverOnce(vector, kind, errorCode, address);
                return;
            }
            catch (CpuFault second)
            {
                if (TaskSwitchCommitted)
                {
                    // A task gate already switched tasks: the fault is the new task's, at its first instruction.
                    TaskSwitchCommitted = false;
                    restartIp = Rip;
                }
                else
                {
                    before.Restore(this);
                    Rip = restartIp;
                }
                // CR2 takes the address when the page fault is detected, even if it then becomes #DF:
                // a #DF handler reads it to recognise a kernel stack overflow into a guard page.
                if (second.Vector == Vectors.PF) Cr2 = second.Address;
                if (vector == Vectors.DF && IsHardwareException(kind))
                    throw new TripleFaultException($"{second.Message} while delivering #DF");
                var code = second.ErrorCode;
                // EXT (bit 0) marks a selector error code raised while delivering an event the program did not
                // ask for (an interrupt, NMI or earlier exception); INT n, INT3 and INTO leave it clear.
                if (kind is not (EventKind.Software or EventKind.SoftwareException) && code is { } c &&
                    second.Vector is Vectors.TS or Vectors.NP or Vectors.SS or Vectors.GP)
                    code = c | 1;
                if (IsDoubleFault(vector, kind, second.Vector))
                {
                    vector = Vectors.DF;
                    errorCode = 0;
                    address = 0;
                }
                else
                {
                    vector = second.Vector;
                    errorCode = code;
                    address = second.Address;
                }
                kind = EventKind.Fault;
            }
        }
    }

    private static bool IsHardwareException(EventKind kind) => kind is EventKind.Fault or EventKind.Trap;

    private static bool IsContributory(int vector) =>
        vector is Vectors.DE or Vectors.TS or Vectors.NP or Vectors.SS or Vectors.GP;

    /// <summary>SDM Table 6-5: which first/second exception pairs make a double fault.</summary>
    private static bool IsDoubleFault(int first, EventKind firstKind, int second)
    {
        // Interrupts, NMIs and INT n are benign whatever their vector: only exceptions have a class.
        if (!IsHardwareException(firstKind)) return false;
        if (IsContributory(first)) return IsContributory(second);
        if (first == Vectors.PF) return IsContributory(second) || second == Vectors.PF;
        return false;
    }

    /// <summary>Vectors whose exceptions push an error code (SDM Table 6-1).</summary>
    internal static bool HasErrorCode(int vector) =>
        vector is Vectors.DF or (>= Vectors.TS and <= Vectors.PF) or Vectors.AC or 21;

    private void DeliverOnce(int vector, EventKind kind, uint? errorCode, ulong address)
    {
        if (vector == Vectors.PF) Cr2 = address;
        // NMIs stay blocked from here until the next IRET (SDM 6.7.1).
        if (kind == EventKind.Nmi) NmiBlocked = true;
        if (!ProtectedMode)
        {
            DeliverReal(vector);
            return;
        }
        // Without CR4.VME, INT n in virtual-8086 mode is IOPL-sensitive (SDM 20.3.1).
        if (kind == EventKind.Software && V86Mode && Iopl < 3) throw CpuFault.General(0);
        var ext = kind is EventKind.Software or EventKind.SoftwareException ? 0u : 1u;
        // Error codes belong to exceptions only: an external interrupt or INT n on vector 13 pushes none.
        uint? pushed = IsHardwareException(kind) && HasErrorCode(vector) ? errorCode ?? 0 : null;
        if (LongModeActive) DeliverLong(vector, kind, ext, pushed);
        else DeliverProtected(vector, kind, ext, pushed);
    }

    private void DeliverReal(int vector)
    {
        // Beyond the IVT limit is #GP, which escalates to #DF and shutdown (the "LIDT with limit 0" reset).
        if ((ulong)vector * 4 + 3 > Idtr.Limit) throw CpuFault.General(0);
        var entry = ReadLinear((Idtr.Base + (ulong)vector * 4) & 0xFFFF_FFFF, 4);
        Push(GetFlags() & 0xFFFF, 2);
        Push(Segs[Seg.CS].Selector, 2);
        Push(Rip & 0xFFFF, 2);
        FlagsRest &= ~(RFlags.IF | RFlags.TF | RFlags.AC | RFlags.RF);
        LoadRealModeCs((ushort)(entry >> 16));
        Rip = entry & 0xFFFF;
    }

    /// <summary>The IDT error code for a bad gate: index = vector, IDT bit, EXT (SDM 6.13).</summary>
    private static uint IdtError(int vector, uint ext) => (uint)vector * 8 + 2 + ext;

    /// <summary>The code segment a gate names, checked as event delivery checks it (SDM 6.12.1.1).</summary>
    private Descriptor GateCodeSegment(ushort selector, uint ext, out ulong address)
    {
        if (IsNullSelector(selector)) throw CpuFault.General(ext);
        if (!TryReadDescriptor(selector, out var cs, out address)) throw CpuFault.General(SelectorError(selector) | ext);
        if (!cs.IsCode || cs.Dpl > Cpl) throw CpuFault.General(SelectorError(selector) | ext);
        if (LongModeActive && (!cs.Long || cs.Big)) throw CpuFault.General(SelectorError(selector) | ext);
        if (!cs.Present) throw CpuFault.NotPresent(SelectorError(selector) | ext);
        return cs;
    }

    /// <summary>Protected-mode delivery through 16- and 32-bit interrupt and trap gates.</summary>
    private void DeliverProtected(int vector, EventKind kind, uint ext, uint? errorCode)
    {
        if ((ulong)vector * 8 + 7 > Idtr.Limit) throw CpuFault.General(IdtError(vector, ext));
        var gate = new Descriptor(ReadSystem((Idtr.Base + (ulong)vector * 8) & 0xFFFF_FFFF, 8));
        var type = gate.Type;
        if (!gate.IsSystem || type is not (SystemType.TaskGate or SystemType.InterruptGate16 or SystemType.TrapGate16
                or SystemType.InterruptGate32 or SystemType.TrapGate32))
            throw CpuFault.General(IdtError(vector, ext));
        // INT n, INT3 and INTO may use only gates their privilege level can reach; INT1 and hardware events may not be refused.
        if (kind is EventKind.Software or EventKind.SoftwareException && gate.Dpl < Cpl)
            throw CpuFault.General(IdtError(vector, 0));
        if (!gate.Present) throw CpuFault.NotPresent(IdtError(vector, ext));
        if (type == SystemType.TaskGate)
        {
            TaskSwitchThroughGate(gate.GateSelector, TaskSwitchReason.Interrupt, ext, errorCode);
            return;
        }

        var selector = gate.GateSelector;
        var cs = GateCodeSegment(selector, ext, out var csAddress);
        var size = (type & 8) != 0 ? 4 : 2; // 32-bit gates have bit 3 of the type set
        var offset = size == 4 ? gate.GateOffset & 0xFFFF_FFFF : gate.GateOffset & 0xFFFF;
        var flags = GetFlags();
        var oldCs = Segs[Seg.CS].Selector;
        var oldRip = Rip;
        var fromV86 = V86Mode;

        if (!cs.IsConforming && cs.Dpl < Cpl)
        {
            // Inner privilege: switch to the stack the TSS holds for the handler's ring.
            if (fromV86 && cs.Dpl != 0) throw CpuFault.General(SelectorError(selector) | ext);
            var newCpl = cs.Dpl;
            var (ssSel, sp) = ReadTssStack(newCpl);
            var newSs = CheckInnerStack(ssSel, newCpl);
            CheckTargetOffset(cs, offset);
            var oldSs = Segs[Seg.SS].Selector;
            var oldSp = Gprs[Gpr.RSP];
            Span<ushort> v86Segs = [Segs[Seg.GS].Selector, Segs[Seg.FS].Selector, Segs[Seg.DS].Selector, Segs[Seg.ES].Selector];
            FlagsRest &= ~RFlags.VM;
            Segs[Seg.SS] = newSs;
            Gprs[Gpr.RSP] = sp;
            LoadCodeSegment(selector, cs, csAddress, newCpl);
            try
            {
                if (fromV86)
                    foreach (var s in v86Segs) Push(s, size);
                Push(oldSs, size);
                Push(oldSp, size);
                Push(flags, size);
                Push(oldCs, size);
                Push(oldRip, size);
                if (errorCode is { } e) Push(e, size);
            }
            catch (CpuFault f) when (f.Vector == Vectors.SS && f.ErrorCode == 0)
            {
                // Running off the new stack names the new stack's selector.
                throw CpuFault.StackFault(SelectorError(ssSel) | ext);
            }
            if (fromV86)
                foreach (var s in (ReadOnlySpan<int>)[Seg.GS, Seg.FS, Seg.DS, Seg.ES]) Segs[s] = NullSegment(0);
        }
        else if (cs.IsConforming || cs.Dpl == Cpl)
        {
            if (fromV86) throw CpuFault.General(SelectorError(selector) | ext);
            CheckTargetOffset(cs, offset);
            Push(flags, size);
            Push(oldCs, size);
            Push(oldRip, size);
            if (errorCode is { } e) Push(e, size);
            LoadCodeSegment(selector, cs, csAddress, Cpl);
        }
        else throw CpuFault.General(SelectorError(selector) | ext);

        FinishDelivery(type is SystemType.InterruptGate16 or SystemType.InterruptGate32);
        Rip = offset;
    }

    /// <summary>
    /// IA-32e delivery through 16-byte gates (SDM 6.14): always a 64-bit frame with SS:RSP, RSP aligned to
    /// 16 bytes, IST stacks, and a null SS with RPL = new CPL on a privilege change.
    /// </summary>
    private void DeliverLong(int vector, EventKind kind, uint ext, uint? errorCode)
    {
        if ((ulong)vector * 16 + 15 > Idtr.Limit) throw CpuFault.General(IdtError(vector, ext));
        var at = Idtr.Base + (ulong)vector * 16;
        var gate = new Descriptor(ReadSystem(at, 8), ReadSystem(at + 8, 8));
        var type = gate.Type;
        if (!gate.IsSystem || type is not (SystemType.InterruptGate32 or SystemType.TrapGate32))
            throw CpuFault.General(IdtError(vector, ext));
        if (kind is EventKind.Software or EventKind.SoftwareException && gate.Dpl < Cpl)
            throw CpuFault.General(IdtError(vector, 0));
        if (!gate.Present) throw CpuFault.NotPresent(IdtError(vector, ext));

        var selector = gate.GateSelector;
        var cs = GateCodeSegment(selector, ext, out var csAddress);
        var offset = gate.GateOffset;
        if (!IsCanonical(offset)) throw CpuFault.General(ext);
        var ist = gate.GateIst;
        int newCpl;
        ulong rsp;
        var switchStack = !cs.IsConforming && cs.Dpl < Cpl;
        if (switchStack)
        {
            newCpl = cs.Dpl;
            rsp = ReadTss64Stack(newCpl, ist);
        }
        else if (cs.IsConforming || cs.Dpl == Cpl)
        {
            newCpl = Cpl;
            // An IST gate switches stacks even without a privilege change.
            rsp = ist != 0 ? ReadTss64Stack(newCpl, ist) : Gprs[Gpr.RSP];
        }
        else throw CpuFault.General(SelectorError(selector) | ext);
        rsp &= ~0xFUL;
        if (!IsCanonical(rsp)) throw CpuFault.StackFault(ext);

        var flags = GetFlags();
        var oldSs = Segs[Seg.SS].Selector;
        var oldRsp = Gprs[Gpr.RSP];
        var oldCs = Segs[Seg.CS].Selector;
        var oldRip = Rip;
        LoadCodeSegment(selector, cs, csAddress, newCpl);
        if (switchStack) Segs[Seg.SS] = NullStackSegment(newCpl);
        Gprs[Gpr.RSP] = rsp;
        Push(oldSs, 8);
        Push(oldRsp, 8);
        Push(flags, 8);
        Push(oldCs, 8);
        Push(oldRip, 8);
        if (errorCode is { } e) Push(e, 8);
        FinishDelivery(type == SystemType.InterruptGate32);
        Rip = offset;
    }

    /// <summary>RFLAGS after delivery through a gate: TF, NT, RF and VM clear; IF clear for interrupt gates.</summary>
    private void FinishDelivery(bool interruptGate)
    {
        FlagsRest &= ~(RFlags.TF | RFlags.NT | RFlags.RF | RFlags.VM);
        if (interruptGate) FlagsRest &= ~RFlags.IF;
        UpdateMode();
    }
}
