using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// System instructions: HLT, CLI/STI, MOV CR/DR (ControlRegisters.cs), LMSW/SMSW/CLTS, INVLPG, cache and
/// ordering instructions, the undefined-opcode instructions, and the features this model does not
/// advertise (MONITOR/MWAIT, XGETBV/XSETBV) which raise #UD. SYSCALL/SYSENTER and SWAPGS are in
/// FastSystemCalls.cs; RDMSR/WRMSR/RDTSC in Msr.cs.
/// </summary>
internal static unsafe class SystemInstructions
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Hlt, &Hlt);
        t.Set(Mnemonic.Cli, &Cli);
        t.Set(Mnemonic.Sti, &Sti);
        t.Set(Mnemonic.Lmsw, &Lmsw);
        t.Set(Mnemonic.Smsw, &Smsw);
        t.Set(Mnemonic.Clts, &Clts);
        t.Set(Mnemonic.Invlpg, &Invlpg);
        t.Set(Mnemonic.Invd, &PrivilegedNop);
        t.Set(Mnemonic.Wbinvd, &PrivilegedNop);
        t.Set(Mnemonic.Clflush, &Clflush);
        // Hints and ordering: with one in-order engine and no caches they have nothing to do and never fault.
        foreach (var m in new[] { Mnemonic.Prefetchnta, Mnemonic.Prefetcht0, Mnemonic.Prefetcht1, Mnemonic.Prefetcht2,
                     Mnemonic.Prefetchw, Mnemonic.Prefetch, Mnemonic.Mfence, Mnemonic.Lfence, Mnemonic.Sfence })
            t.Set(m, &Nop);
        foreach (var m in new[] { Mnemonic.Ud0, Mnemonic.Ud1, Mnemonic.Ud2, Mnemonic.Monitor, Mnemonic.Mwait,
                     Mnemonic.Monitorx, Mnemonic.Mwaitx, Mnemonic.Xgetbv, Mnemonic.Xsetbv })
            t.Set(m, &Undefined);
        FastSystemCalls.Register(t);
    }

    private static void Nop(SoftwareCpu cpu, in Instruction i) { }

    /// <summary>UD0/UD1/UD2, and instructions of features CPUID does not advertise.</summary>
    private static void Undefined(SoftwareCpu cpu, in Instruction i) => throw CpuFault.InvalidOpcode();

    /// <summary>INVD/WBINVD: CPL 0 only; there are no caches to write back.</summary>
    private static void PrivilegedNop(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Cpl != 0) throw CpuFault.General(0);
    }

    private static void Hlt(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        cpu.Halted = true;
        cpu.EndBlock = true;
    }

    /// <summary>CLI (SDM Vol. 2A): IF by IOPL, else VIF under PVI (CPL 3) or VME (virtual-8086 mode).</summary>
    private static void Cli(SoftwareCpu cpu, in Instruction i)
    {
        if (!cpu.ProtectedMode || (!cpu.V86Mode ? cpu.Iopl >= cpu.Cpl : cpu.Iopl == 3))
            cpu.FlagsRest &= ~RFlags.IF;
        else if (VirtualInterruptFlagMode(cpu))
            cpu.FlagsRest &= ~RFlags.VIF;
        else
            throw CpuFault.General(0);
    }

    /// <summary>STI: as CLI; setting IF opens a one-instruction interrupt shadow.</summary>
    private static void Sti(SoftwareCpu cpu, in Instruction i)
    {
        if (!cpu.ProtectedMode || (!cpu.V86Mode ? cpu.Iopl >= cpu.Cpl : cpu.Iopl == 3))
        {
            if ((cpu.FlagsRest & RFlags.IF) == 0)
            {
                cpu.FlagsRest |= RFlags.IF;
                // Interrupts stay blocked until after the next instruction (STI shadow).
                cpu.InterruptShadow = true;
            }
            cpu.EndBlock = true;
        }
        else if (VirtualInterruptFlagMode(cpu) && (cpu.FlagsRest & RFlags.VIP) == 0)
            cpu.FlagsRest |= RFlags.VIF;
        else
            throw CpuFault.General(0);
    }

    /// <summary>True where CLI/STI/POPF act on VIF instead of faulting: VME in V86 mode, PVI at CPL 3.</summary>
    internal static bool VirtualInterruptFlagMode(SoftwareCpu cpu) =>
        cpu.V86Mode ? (cpu.Cr4 & Cr4.VME) != 0 : cpu.Cpl == 3 && (cpu.Cr4 & Cr4.PVI) != 0;

    /// <summary>MOV to or from CR0-CR8 and DR0-DR7 (called from MOV).</summary>
    public static void MovControl(SoftwareCpu cpu, in Instruction i) => ControlRegisters.Mov(cpu, in i);

    /// <summary>LMSW: loads CR0[3:0] (PE, MP, EM, TS); PE can be set but not cleared.</summary>
    private static void Lmsw(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        var src = cpu.ReadOperand(in i, 0) & 0xF;
        var old = cpu.Cr0;
        var v = (old & ~0xFUL) | src | (old & Cr0.PE);
        cpu.Cr0 = v;
        if (((old ^ v) & Cr0.PE) != 0) cpu.UpdateMode();
        cpu.EndBlock = true;
    }

    /// <summary>SMSW: CR0 to a register (all of it, as processors do) or its low 16 bits to memory.</summary>
    private static void Smsw(SoftwareCpu cpu, in Instruction i) => cpu.WriteOperand(in i, 0, cpu.Cr0);

    private static void Clts(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        cpu.Cr0 &= ~Cr0.TS;
    }

    /// <summary>
    /// INVLPG: drops the translation of the page holding the operand's linear address (segment base plus
    /// offset, with no limit or access checks). A non-canonical address invalidates nothing.
    /// </summary>
    private static void Invlpg(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        var la = LinearNoChecks(cpu, in i);
        if (SoftwareCpu.IsCanonical(la)) cpu.InvalidatePage(la);
        // The mapping of the code that follows may have changed.
        cpu.EndBlock = true;
    }

    /// <summary>CLFLUSH: checked like a one-byte read (segment and paging), without touching the data.</summary>
    private static void Clflush(SoftwareCpu cpu, in Instruction i)
    {
        var la = cpu.MemoryLinear(in i, 1, AccessKind.Read);
        cpu.Translate(la, AccessKind.Read, cpu.Cpl == 3);
    }

    /// <summary>Segment base + effective address, truncated to 32 bits outside 64-bit mode.</summary>
    internal static ulong LinearNoChecks(SoftwareCpu cpu, in Instruction i)
    {
        var seg = SoftwareCpu.SegIndex(i.MemorySegment);
        var ea = cpu.EffectiveAddress(in i);
        if (cpu.Is64) return seg >= Seg.FS ? ea + cpu.Segs[seg].Base : ea;
        return (cpu.Segs[seg].Base + ea) & 0xFFFF_FFFFUL;
    }
}
