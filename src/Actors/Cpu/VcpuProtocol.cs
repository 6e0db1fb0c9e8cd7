using Akka.Actor;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Cpu;

namespace Actorvisor.Actors.Cpu;

/// <summary>
/// Messages of a <see cref="VcpuActor"/> besides <see cref="Kernel.Messages.LifecycleProtocol.Suspend"/> /
/// <see cref="Kernel.Messages.LifecycleProtocol.Resume"/> (answered with Suspended / Resumed).
/// Commands are answered by the run thread between two runs of the CPU, so a reply describes a CPU that
/// is not executing.
/// </summary>
public static class VcpuProtocol
{
    /// <summary>Begin executing guest code (a vCPU is created stopped, so the VM can finish wiring first).</summary>
    public sealed record Start
    {
        public static readonly Start Instance = new();
    }

    /// <summary>
    /// An interrupt or NMI became pending for this vCPU (its interrupt source changed): a running CPU looks
    /// at the next block boundary, a halted one wakes. Handled by the actor at once, not queued; no reply.
    /// </summary>
    public sealed record Kick
    {
        public static readonly Kick Instance = new();
    }

    /// <summary>Answered with <see cref="Registers"/>.</summary>
    public sealed record GetRegisters
    {
        public static readonly GetRegisters Instance = new();
    }

    /// <summary>
    /// Set one register by name (<see cref="Kernel.Cpu.SoftwareCpu.RegisterNames"/>), between runs; answered with
    /// <see cref="RegisterSet"/>, or NotAllowed for an unknown name.
    /// </summary>
    public sealed record SetRegister(string Name, ulong Value);

    public sealed record RegisterSet(int VcpuId, string Name, ulong Value);

    /// <summary>Answered with <see cref="Counters"/>.</summary>
    public sealed record GetCounters
    {
        public static readonly GetCounters Instance = new();
    }

    /// <summary>End the run thread; answered with <see cref="Stopped"/>.</summary>
    public sealed record Stop
    {
        public static readonly Stop Instance = new();
    }

    /// <summary>
    /// Run <paramref name="Work"/> on the run thread between two runs of the CPU, at an instruction boundary
    /// (a control client's register dump or change, a LAPIC dump, an injected NMI); answered with
    /// <see cref="OnThreadResult"/>. Also answered while suspended, halted or shut down.
    /// </summary>
    public sealed record OnThread(Func<SoftwareCpu, object?> Work);

    /// <param name="ThreadState">The run thread's state: NotStarted, Running, Paused (suspended), ShutDown, Failed.</param>
    /// <param name="Error">What <see cref="OnThread.Work"/> threw, if it did.</param>
    public sealed record OnThreadResult(int VcpuId, string ThreadState, object? Value, string? Error);

    /// <summary>bhyve's capabilities of this vCPU (<see cref="VcpuCapabilities"/>); answered with <see cref="CapValues"/>.</summary>
    public sealed record GetCaps
    {
        public static readonly GetCaps Instance = new();
    }

    /// <param name="Values">Each capability by bhyve's name: on, off, or null when not available.</param>
    public sealed record CapValues(int VcpuId, IReadOnlyDictionary<string, bool?> Values);

    /// <summary>Turn a capability on or off between runs; answered with <see cref="CapSet"/>, or NotAllowed saying why not.</summary>
    public sealed record SetCap(string Name, bool On);

    public sealed record CapSet(int VcpuId, string Name, bool On);

    /// <summary>Publish a new bus snapshot (a device added, a BAR moved): later accesses use it.</summary>
    public sealed record UpdateBus(IoBus<IActorRef> Bus);

    public sealed record Started(int VcpuId);
    public sealed record Stopped(int VcpuId);
    public sealed record Registers(int VcpuId, CpuRegisters State);
    /// <summary>Instructions retired, accesses that hit no device, and read replies that came when nothing waited.</summary>
    public sealed record Counters(int VcpuId, long Instructions, long UnassignedPortReads, long UnassignedPortWrites,
        long UnassignedMmioReads, long UnassignedMmioWrites, long StrayReplies)
    {
        /// <summary>Exits by reason (telemetry's names) and accesses per device ("DEVICE": [reads, writes]), since the vCPU started.</summary>
        public IReadOnlyDictionary<string, long> Exits { get; init; } = new Dictionary<string, long>();
        public IReadOnlyDictionary<string, (long Reads, long Writes)> Accesses { get; init; } = new Dictionary<string, (long, long)>();
    }

    // ---- reports to the parent (the VM supervisor) ----

    /// <summary>
    /// HLT with interrupts disabled, or wait-for-SIPI (an AP not started yet, or after INIT): only an NMI, INIT,
    /// SIPI or reset could wake it (bhyve: "halted"). <see cref="Woke"/> follows if it runs again.
    /// </summary>
    public sealed record HaltedForGood(int VcpuId, ulong Rip);
    /// <summary>A vCPU that reported <see cref="HaltedForGood"/> runs again (an NMI, or a SIPI after wait-for-SIPI).</summary>
    public sealed record Woke(int VcpuId);
    /// <summary>The CPU shut down on a triple fault.</summary>
    public sealed record ShutDown(int VcpuId, string Reason);
    /// <summary>A host-side error stopped the vCPU: a device that did not answer, a bug. The vCPU stays stopped.</summary>
    public sealed record Failed(int VcpuId, string Error);
}

/// <summary>A copy of a vCPU's main registers, taken between runs.</summary>
public sealed record CpuRegisters(
    ulong[] Gprs, ulong Rip, ulong Rflags, ushort Cs, ushort Ss, int Bitness, int Cpl,
    ulong Cr0, ulong Cr2, ulong Cr3, ulong Cr4, ulong Efer, long InstructionCount, bool Halted,
    bool WaitingForSipi = false)
{
    public ulong Rax => Gprs[0];
}
