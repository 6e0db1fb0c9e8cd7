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

    /// <summary>The lifecycle state machine, which a reset passes through rather than restarts.</summary>
    public VmLifecycle Lifecycle { get; } = new();
}
