namespace Actorvisor.Actors.Devices.DebugExit;

public static class DebugExitProtocol
{
    /// <summary>
    /// The guest wrote <paramref name="Value"/> to isa-debug-exit: the VM must end, and the program exit
    /// with <paramref name="Status"/> = (Value &lt;&lt; 1) | 1.
    /// </summary>
    public sealed record ExitRequested(int Status, uint Value);
}
