namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// INIT and STARTUP (SDM Vol. 3A, 10.1 "Initialization Overview", 10.4 "Multiple-Processor (MP)
/// Initialization"): an INIT puts the processor into the INIT state and the wait-for-SIPI state; a STARTUP IPI
/// then starts it in real mode at vector·1000h. Application processors begin life waiting for a SIPI. The run
/// thread (not the run loop) honours <see cref="WaitingForSipi"/>: a CPU that waits runs nothing and takes no
/// interrupt or NMI.
/// </summary>
public sealed partial class SoftwareCpu
{
    /// <summary>In the wait-for-SIPI state: only a STARTUP IPI (or another INIT) does anything.</summary>
    public bool WaitingForSipi { get; private set; }

    /// <summary>The initial APIC ID (CPUID.1:EBX[31:24], CPUID.0xB:EDX), from the VM's topology.</summary>
    public int ApicId => Model.Topology.ApicIdOf(Id);

    /// <summary>An application processor after power-on: RESET state, waiting for a STARTUP IPI.</summary>
    public void EnterWaitForSipi() => WaitingForSipi = true;

    /// <summary>
    /// INIT (SDM Vol. 3A, Table 10-1, INIT column): the registers take their RESET values except that CR0.CD/NW,
    /// the x87/MMX/SSE state, the MSRs and the TSC are unchanged; the TLBs are invalidated. EFER is cleared (paging
    /// is off, so LMA cannot stay, and KVM clears the whole register). Pending and blocked NMIs are dropped. The
    /// processor then waits for a SIPI; IA32_APIC_BASE (with its BSP flag) is an MSR and stays.
    /// </summary>
    public void Init()
    {
        SetResetRegisters((Cr0 & (Cpu.Cr0.CD | Cpu.Cr0.NW)) | Cpu.Cr0.ET);
        NoteInterruptChange();
        UpdateMode();
        FlushTlb(includeGlobal: true);
        ClearDecodeCache();
        WaitingForSipi = true;
    }

    /// <summary>
    /// A STARTUP IPI with <paramref name="vector"/> VV: a CPU waiting for one starts in real mode at VV00:0000
    /// (CS base VV000h), everything else as INIT left it. Returns false (and changes nothing) if the CPU was not
    /// waiting: a SIPI to a running processor is ignored.
    /// </summary>
    public bool StartUp(byte vector)
    {
        if (!WaitingForSipi) return false;
        WaitingForSipi = false;
        ref var cs = ref Segs[Seg.CS];
        cs.Selector = (ushort)(vector << 8);
        cs.Base = (ulong)vector << 12;
        cs.Limit = 0xFFFF;
        Rip = 0;
        Halted = false;
        UpdateMode();
        return true;
    }
}
