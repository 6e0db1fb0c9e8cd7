namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// What the CPU needs from the machine around it: port I/O and MMIO (for physical addresses that are not
/// RAM). The vCPU actor implements it by messages to device actors; tests implement it directly.
/// </summary>
public interface ICpuPlatform
{
    uint PortRead(int vcpuId, ushort port, int size);
    void PortWrite(int vcpuId, ushort port, int size, uint value);
    ulong MmioRead(int vcpuId, ulong address, int size);
    void MmioWrite(int vcpuId, ulong address, int size, ulong value);
}

/// <summary>
/// The source of external interrupts for one vCPU (its LAPIC, or the 8259 through LINT0). The CPU asks
/// only when it can take an interrupt (IF set, no interrupt shadow).
/// </summary>
public interface IInterruptSource
{
    /// <summary>Cheap check, polled at block boundaries.</summary>
    bool HasPendingInterrupt { get; }
    /// <summary>Accepts the highest-priority pending vector (moves it in service); -1 if none is deliverable.</summary>
    int AcknowledgeInterrupt();

    /// <summary>
    /// True for a source that calls <see cref="SoftwareCpu.NoteInterruptChange"/> whenever its answer may turn
    /// true: the CPU then asks only after such a call (or after it changed CR8, an MSR or a register itself),
    /// not at every block boundary. Otherwise the CPU asks every time.
    /// </summary>
    bool SignalsChanges => false;
}

public sealed class NoInterrupts : IInterruptSource
{
    public static readonly NoInterrupts Instance = new();
    public bool HasPendingInterrupt => false;
    public int AcknowledgeInterrupt() => -1;
}

/// <summary>Why <see cref="SoftwareCpu.Run"/> returned.</summary>
public enum CpuExitReason
{
    /// <summary>The instruction budget given to Run was used up.</summary>
    InstructionLimit,
    /// <summary>HLT: the caller waits for an interrupt or a kick, then runs again.</summary>
    Halted,
    /// <summary>Someone called <see cref="SoftwareCpu.Kick"/>: control messages are waiting.</summary>
    Kicked,
    /// <summary>Triple fault: the processor shut down.</summary>
    Shutdown,
}
