namespace Actorvisor.Host.Vm;

/// <summary>
/// The console's input: a stream the VM's COM1 receives, and whether it is the user's terminal. From a
/// terminal (put in raw mode by the caller), Ctrl-A x ends the run and Ctrl-A Ctrl-A sends one Ctrl-A, as
/// in QEMU's -nographic; from a pipe or file, every byte goes to the guest as it is.
/// </summary>
public sealed record ConsoleInput(Stream Stream, bool IsTerminal);
