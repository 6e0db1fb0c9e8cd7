using Actorvisor.Kernel.Cpu;

namespace Actorvisor.Actors.Cpu;

/// <summary>
/// bhyve's per-vCPU capabilities (vm_cap_type; `bhyvectl --getcap/--setcap`), by bhyve's names, and what each
/// means for our software CPU. bhyve asks VMX/SVM to exit on an event; we get the same effect from the run
/// thread: the instruction budget it gives <see cref="SoftwareCpu.Run"/>, what it does on a halt, and the
/// interrupt source it gives the CPU. A capability the CPU has no way to change is reported as unsupported, as
/// bhyvectl reports a capability the host CPU lacks.
/// </summary>
public static class VcpuCapabilities
{
    /// <summary>How a capability maps onto the software CPU.</summary>
    public enum Support
    {
        /// <summary>setcap changes it.</summary>
        Settable,
        /// <summary>It has one value the CPU cannot leave; setcap to that value is accepted, the other refused.</summary>
        Fixed,
        /// <summary>Not available on this CPU: getcap and setcap fail with the reason.</summary>
        Unsupported,
    }

    /// <param name="Name">bhyve's name (libvmmapi's vm_capstrmap).</param>
    /// <param name="Meaning">What it does here, or why it is not available.</param>
    public sealed record Capability(string Name, Support Support, string Meaning);

    /// <summary>In bhyve's order (enum vm_cap_type).</summary>
    public static readonly IReadOnlyList<Capability> All =
    [
        new("hlt_exit", Support.Settable,
            "on: HLT leaves the run loop and parks the vCPU thread until an interrupt (counted as 'halt' exits); " +
            "off: a halted vCPU polls for its wake-up on a busy thread, as a guest without HLT exiting keeps its CPU"),
        new("mtrap_exit", Support.Settable,
            "an exit after every instruction (the monitor trap flag): the vCPU runs one instruction per run, each counted as an 'mtrap' exit"),
        new("pause_exit", Support.Settable,
            "PAUSE leaves the run loop and is counted as a 'pause' exit (the vCPU runs an instruction at a time while it is on, to see each PAUSE)"),
        new("unrestricted_guest", Support.Fixed,
            "always on: the software CPU runs real mode and unpaged protected mode itself"),
        new("enable_invpcid", Support.Unsupported,
            "the CPU does not implement INVPCID (CPUID.07H:EBX[10] clear), so it cannot be offered to the guest"),
        new("bpt_exit", Support.Unsupported,
            "breakpoint exits need an INT3 intercept in the CPU and a debugger stub to take them; neither exists"),
        new("rdpid", Support.Unsupported, "the CPU does not implement RDPID (CPUID.07H:ECX[22] clear)"),
        new("rdtscp", Support.Fixed,
            "fixed by the CPU model (CPUID.80000001H:EDX[27]), which the guest reads at start; on with the default model"),
        new("ipi_exit", Support.Unsupported,
            "IPIs go from LAPIC model to LAPIC model on the vCPU threads; there is no exit to the VMM to report"),
        new("mask_hwintr", Support.Settable,
            "on: external interrupts are not injected into this vCPU (they stay pending in its LAPIC/PIC); NMIs still are"),
        new("rflags_tf", Support.Unsupported,
            "single-stepping through a host-owned RFLAGS.TF is not modelled; mtrap_exit gives an exit per instruction"),
    ];

    public static Capability? Find(string name) => All.FirstOrDefault(c => c.Name == name);

    public static string Names => string.Join(", ", All.Select(c => c.Name));
}

/// <summary>The settable capabilities of one vCPU; owned by its run thread.</summary>
internal sealed class VcpuCapState
{
    public bool HltExit = true;
    public bool MtrapExit;
    public bool PauseExit;
    public bool MaskHwintr;

    /// <summary>One instruction per run: for mtrap_exit, and to see each PAUSE for pause_exit.</summary>
    public bool SingleStep => MtrapExit || PauseExit;
}

/// <summary>The CPU's interrupt source with external interrupts held back (mask_hwintr): they stay pending.</summary>
internal sealed class MaskedInterrupts(IInterruptSource inner) : IInterruptSource
{
    public IInterruptSource Inner { get; } = inner;
    public bool HasPendingInterrupt => false;
    public int AcknowledgeInterrupt() => -1;
}
