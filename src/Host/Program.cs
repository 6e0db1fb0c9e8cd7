using Actorvisor.Host;
using Actorvisor.Host.Vm;
using Microsoft.Win32.SafeHandles;

// stdin as a plain file descriptor, not System.Console's stream: on a terminal, .NET's console sets its own
// termios around every read of stdin, which would undo the raw mode the guest's console needs (and echo
// the user's keys twice). stderr as a raw stream too: Console.Error would write keypad-mode escapes to the
// terminal. (stdout stays Console's stream: it writes with write(2), while a FileStream on a regular file
// would write at its own offset, over what the shell appended before.)
using var stdout = Console.OpenStandardOutput();
using var stdin = OpenStdin();
using var stderr = new StreamWriter(Console.OpenStandardError()) { AutoFlush = true };
return ActorvisorCli.Run(args, stdout, stderr, stdin is null ? null : new ConsoleInput(stdin, TerminalRawMode.StdinIsTerminal));

// A closed stdin (`actorvisor run <&-`) just means no console input.
static FileStream? OpenStdin()
{
    try
    {
        return new FileStream(new SafeFileHandle(0, ownsHandle: false), FileAccess.Read, bufferSize: 0);
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
    {
        return null;
    }
}
