namespace Actorvisor.Host.Vm;

/// <summary>Where a VM is in its life (see <see cref="VmLifecycle"/> for the transitions).</summary>
public enum VmState
{
    /// <summary>Guest RAM, devices and vCPUs are being built (at power-on and after each reset).</summary>
    Starting,
    /// <summary>The vCPUs run guest code.</summary>
    Running,
    /// <summary>A suspend was asked for; some active vCPU has not left the guest yet.</summary>
    Suspending,
    /// <summary>Every active vCPU has left the guest at an instruction boundary and waits for resume.</summary>
    Suspended,
    /// <summary>The machine is being torn down to be built again from power-on state (RTC and NVRAM kept).</summary>
    Resetting,
    /// <summary>The VM ended normally: powered off, halted, or the guest's isa-debug-exit status. Final.</summary>
    PoweredOff,
    /// <summary>The VM ended on a triple fault or a host-side error. Final.</summary>
    Failed,
}

public static class VmStateNames
{
    /// <summary>The protocol's spelling: "running", "powered-off", ...</summary>
    public static string Wire(this VmState s) => s switch
    {
        VmState.PoweredOff => "powered-off",
        _ => s.ToString().ToLowerInvariant(),
    };
}
