namespace Actorvisor.Host.Control;

/// <summary>
/// Where control sockets live: <c>--run-dir</c> if given, else <c>$ACTORVISOR_RUN_DIR</c>, else
/// <c>/run/actorvisor</c> for root, else <c>$XDG_RUNTIME_DIR/actorvisor</c>, else <c>/tmp/actorvisor-UID</c>.
/// The directory is made with mode 0700 and each socket is <c>NAME.sock</c> with mode 0600.
/// </summary>
public static class ControlPaths
{
    public const string EnvironmentVariable = "ACTORVISOR_RUN_DIR";

    public static string Directory(string? overrideDir = null)
    {
        if (!string.IsNullOrEmpty(overrideDir)) return overrideDir;
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env) return env;
        var uid = geteuid();
        if (uid == 0) return "/run/actorvisor";
        if (Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } xdg) return Path.Combine(xdg, "actorvisor");
        return Path.Combine(Path.GetTempPath(), $"actorvisor-{uid}");
    }

    public static string Socket(string directory, string vmName) => Path.Combine(directory, vmName + ".sock");

    /// <summary>Creates the directory (0700) if it is missing.</summary>
    public static void EnsureDirectory(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
            System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = false)]
    private static extern uint geteuid();
}
