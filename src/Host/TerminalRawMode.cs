using System.Runtime.InteropServices;

namespace Actorvisor.Host;

/// <summary>
/// Puts a terminal in raw mode (cfmakeraw: no echo, no line editing, no signals from Ctrl-C, no CR/LF
/// translation) for as long as the guest owns the console, and restores its settings on dispose. The
/// termios structure is kept opaque (a buffer larger than glibc's), so its layout never matters here.
/// </summary>
public sealed partial class TerminalRawMode : IDisposable
{
    private const int StdinFd = 0;
    private const int TcsaDrain = 1;
    private const int TermiosBufferSize = 256; // glibc's struct termios is 60 bytes on x86-64

    private readonly byte[] _saved = new byte[TermiosBufferSize];
    private bool _active;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int isatty(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int tcgetattr(int fd, [Out] byte[] termios);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int tcsetattr(int fd, int optionalActions, byte[] termios);
    [LibraryImport("libc")]
    private static partial void cfmakeraw([In, Out] byte[] termios);

    /// <summary>True when standard input is a terminal.</summary>
    public static bool StdinIsTerminal => OperatingSystem.IsLinux() && isatty(StdinFd) == 1;

    /// <summary>Raw mode on stdin if it is a terminal; a no-op otherwise.</summary>
    public static TerminalRawMode EnterOnStdin()
    {
        var mode = new TerminalRawMode();
        if (!StdinIsTerminal || tcgetattr(StdinFd, mode._saved) != 0) return mode;
        var raw = (byte[])mode._saved.Clone();
        cfmakeraw(raw);
        if (tcsetattr(StdinFd, TcsaDrain, raw) != 0) return mode;
        mode._active = true;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => mode.Dispose();
        return mode;
    }

    public void Dispose()
    {
        if (!_active) return;
        _active = false;
        tcsetattr(StdinFd, TcsaDrain, _saved);
    }
}
