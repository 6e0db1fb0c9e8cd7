namespace Actorvisor.Host.Vm;

public static class VmProtocol
{
    /// <summary>Sent once by a <see cref="VmSupervisor"/> to whoever started it, just before it stops.</summary>
    /// <param name="GuestStatus">With <see cref="VmExitCode.GuestRequested"/>: the status the guest asked for.</param>
    public sealed record VmExited(string Vm, VmExitCode Code, string? Message, int? GuestStatus = null)
    {
        /// <summary>The program's exit status: the guest's own (isa-debug-exit) or bhyve's code.</summary>
        public int ExitStatus => GuestStatus ?? (int)Code;
    }

    /// <summary>Bytes typed on the console, for the guest's COM1.</summary>
    public sealed record ConsoleInput(byte[] Data);

    /// <summary>The user ended the run from the console (Ctrl-A x): the VM stops as if powered off.</summary>
    public sealed record Quit(string Reason);
}
