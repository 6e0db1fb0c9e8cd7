namespace Actorvisor.Host.Vm;

/// <summary>The program's exit status, as bhyve(8) defines it ("EXIT STATUS").</summary>
public enum VmExitCode
{
    /// <summary>The guest rebooted.</summary>
    Reset = 0,
    /// <summary>The guest powered off.</summary>
    PowerOff = 1,
    /// <summary>Every vCPU executed HLT with interrupts disabled.</summary>
    Halted = 2,
    /// <summary>A vCPU triple-faulted.</summary>
    TripleFault = 3,
    /// <summary>A host-side error: a bad kernel file, a device that did not answer, an exception.</summary>
    Error = 4,
    /// <summary>
    /// The guest chose the status itself through isa-debug-exit (<see cref="VmProtocol.VmExited.GuestStatus"/>);
    /// this value is never itself the process status.
    /// </summary>
    GuestRequested = 0x100,
}
