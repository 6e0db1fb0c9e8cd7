using Actorvisor.Actors.Cpu.Deterministic;
using Actorvisor.Actors.Devices.Rtc;

namespace Actorvisor.Host.Vm;

/// <summary>
/// What survives a guest reboot while the VM itself is rebuilt from power-on state (<see cref="VmRunner"/>
/// makes one per run and gives it to each <see cref="VmSupervisor"/>): on a PC, what the RTC's battery keeps,
/// and, on the host's side, where the VM is in its lifecycle.
/// </summary>
public sealed class VmPersistentState
{
    /// <summary>The RTC's time offset, registers A/B and both CMOS banks.</summary>
    public CmosStore Cmos { get; } = new();

    /// <summary>The deterministic schedule, when the run has one: its clock, timer queue, input log and digest
    /// go on across a guest reboot, so a replay reaches the second boot at the same instruction count.</summary>
    public DeterministicScheduler? Scheduler { get; internal set; }

    /// <summary>The fault engine of the run, when it has rules: their counts and state go on across a reboot.</summary>
    public Actorvisor.Kernel.Faults.FaultEngine? Faults { get; internal set; }
    /// <summary>The lifecycle state machine, which a reset passes through rather than restarts.</summary>
    public VmLifecycle Lifecycle { get; } = new();
}
