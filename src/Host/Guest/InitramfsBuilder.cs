using Actorvisor.Kernel.Boot;

namespace Actorvisor.Host.Guest;

/// <summary>
/// Builds the default guest's initramfs with our own cpio writer: busybox and its applet links, the virtio
/// modules with a modules.dep for busybox's modprobe, /dev/console for the kernel's first open, and an /init.
/// </summary>
public static class InitramfsBuilder
{
    /// <summary>The virtio drivers the default /init loads (dependencies come along).</summary>
    public static readonly string[] VirtioModules = ["virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "virtio_console"];

    /// <summary>Busybox applets linked in /bin (busybox --install would need a writable root at boot).</summary>
    public static readonly string[] Applets =
    [
        "sh", "ash", "cat", "echo", "ls", "mount", "umount", "mkdir", "modprobe", "insmod", "lsmod", "dmesg", "poweroff",
        "reboot", "halt", "sync", "uname", "date", "hwclock", "sleep", "cp", "mv", "rm", "ln", "dd", "grep", "head",
        "tail", "wc", "ps", "free", "df", "setsid", "cttyhack", "ip", "ifconfig", "ping", "hexdump", "od", "nproc",
        "stty", "true", "false", "test", "[", "mknod", "chmod", "rtcwake", "vi", "less", "find", "env", "ln", "sed",
    ];

    /// <summary>The default /init: mounts, loads the virtio drivers, and gives a shell on the console.</summary>
    public const string DefaultInit = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        for m in virtio_pci virtio_blk virtio_net virtio_rng virtio_console; do modprobe $m 2>/dev/null; done
        echo "actorvisor: busybox initramfs ready ($(uname -r))"
        exec setsid cttyhack sh
        """;

    /// <param name="extraFiles">More files (path in the archive without a leading '/', contents, permissions), added
    /// after the guest's own; their parent directories are made as needed.</param>
    public static void Build(Stream output, byte[] busybox, string kernelVersion, KernelModules? modules, string initScript,
        IReadOnlyList<ExtraFile>? extraFiles = null)
    {
        var w = new CpioWriter(output);
        foreach (var d in new[] { "bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "root", "lib", "lib/modules", $"lib/modules/{kernelVersion}" })
            w.AddDirectory(d);
        w.AddCharDevice("dev/console", 5, 1);
        w.AddCharDevice("dev/null", 1, 3, 0x1B6);
        w.AddFile("bin/busybox", busybox, 0x1ED);
        foreach (var a in Applets.Distinct()) w.AddSymlink($"bin/{a}", "busybox");
        w.AddFile("init", System.Text.Encoding.UTF8.GetBytes(initScript.ReplaceLineEndings("\n") + "\n"), 0x1ED);
        var made = new HashSet<string> { "bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "root", "lib" };
        foreach (var f in extraFiles ?? [])
        {
            var parts = f.Path.Split('/');
            for (var i = 1; i < parts.Length; i++)
                if (made.Add(string.Join('/', parts[..i]))) w.AddDirectory(string.Join('/', parts[..i]));
            w.AddFile(f.Path, f.Contents, f.Permissions);
        }

        if (modules is not null)
        {
            var present = VirtioModules.Where(modules.Contains).ToArray();
            var all = modules.Closure(present);
            var dirs = new HashSet<string>();
            foreach (var m in all)
            {
                var rel = modules.PathOf(m);
                var dir = Path.GetDirectoryName(rel)!.Replace('\\', '/');
                // Parent directories first, each once.
                var parts = dir.Split('/');
                for (var i = 1; i <= parts.Length; i++)
                {
                    var p = string.Join('/', parts[..i]);
                    if (dirs.Add(p)) w.AddDirectory($"lib/modules/{kernelVersion}/{p}");
                }
                w.AddFile($"lib/modules/{kernelVersion}/{rel}", File.ReadAllBytes(Path.Combine(modules.ModulesRoot, rel)));
            }
            w.AddFile($"lib/modules/{kernelVersion}/modules.dep", System.Text.Encoding.UTF8.GetBytes(modules.ModulesDep(all)));
        }
        w.Finish();
    }
}

/// <summary>A file for the initramfs: its path inside the archive (relative, '/'-separated), bytes and mode bits.</summary>
public sealed record ExtraFile(string Path, byte[] Contents, uint Permissions)
{
    /// <summary>Parses <c>HOST[:GUEST]</c> (GUEST defaults to /bin/NAME) and reads the host file; executable on the
    /// host (any x bit) gives 0755, else 0644. Null with a message for a missing file or a bad guest path.</summary>
    public static ExtraFile? Parse(string spec, out string? error)
    {
        error = null;
        var colon = spec.IndexOf(':');
        var host = colon < 0 ? spec : spec[..colon];
        var guest = colon < 0 ? "/bin/" + System.IO.Path.GetFileName(host) : spec[(colon + 1)..];
        var rel = guest.TrimStart('/');
        if (host.Length == 0 || rel.Length == 0 || rel.EndsWith('/') || rel.Split('/').Any(p => p is "" or "." or ".."))
        {
            error = $"--file '{spec}': expected HOST[:GUEST] with a plain guest path";
            return null;
        }
        if (!File.Exists(host))
        {
            error = $"--file '{spec}': no such file: {host}";
            return null;
        }
        var executable = !OperatingSystem.IsWindows()
                         && (File.GetUnixFileMode(host) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
        return new ExtraFile(rel, File.ReadAllBytes(host), executable ? 0x1EDu : 0x1A4u);
    }
}
