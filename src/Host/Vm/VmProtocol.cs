namespace Actorvisor.Host.Vm;

public static class VmProtocol
{
    /// <summary>Sent once by a <see cref="VmSupervisor"/> to whoever started it, just before it stops.</summary>
    public sealed record VmExited(string Vm, VmExitCode Code, string? Message);
}
