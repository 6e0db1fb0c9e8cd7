using System.Diagnostics;
using Actorvisor.Kernel.Boot;

namespace Actorvisor.Host.Guest;

/// <summary>The files of the cached default guest.</summary>
public sealed record GuestFiles(string Directory, string KernelVersion, string Kernel, string Initramfs, string Busybox, string ModulesRoot)
{
    public const string DefaultCmdline = "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1";
}

/// <summary>
/// Makes the default guest from Debian's own packages: <c>apt-get download</c> of linux-image-cloud-amd64 (and
/// the versioned kernel package it depends on) and busybox-static, unpacked with <c>dpkg-deb -x</c>; keeps the
/// kernel, the virtio modules and busybox under <see cref="GuestCache.Directory"/>, and writes our initramfs.
/// Nothing of Debian's is part of the project's sources.
/// </summary>
public sealed class DebianGuest(TextWriter progress)
{
    public const string KernelMetaPackage = "linux-image-cloud-amd64";
    public const string BusyboxPackage = "busybox-static";

    /// <summary>The cached guest if it is complete, else null.</summary>
    public static GuestFiles? FindCached()
    {
        if (!Directory.Exists(GuestCache.Directory)) return null;
        foreach (var dir in Directory.EnumerateDirectories(GuestCache.Directory).Order().Reverse())
        {
            var ver = Path.GetFileName(dir);
            var files = Layout(dir, ver);
            if (File.Exists(files.Kernel) && File.Exists(files.Initramfs) && File.Exists(files.Busybox)) return files;
        }
        return null;
    }

    private static GuestFiles Layout(string dir, string version) =>
        new(dir, version, Path.Combine(dir, $"vmlinuz-{version}"), Path.Combine(dir, "initramfs.cpio"),
            Path.Combine(dir, "busybox"), Path.Combine(dir, "modules", version));

    /// <summary>Returns the cached guest, making it first if needed.</summary>
    public GuestFiles Ensure() => FindCached() ?? Fetch();

    public GuestFiles Fetch()
    {
        foreach (var tool in new[] { "apt-get", "dpkg-deb" })
            if (!OnPath(tool))
                throw new GuestFetchException(
                    $"'{tool}' is not available, so the default Debian guest cannot be made here; " +
                    "pass a kernel and an initramfs instead: actorvisor run --kernel BZIMAGE --initrd INITRAMFS");

        var work = Directory.CreateTempSubdirectory("actorvisor-guest-");
        try
        {
            progress.WriteLine($"actorvisor: fetching {KernelMetaPackage} and {BusyboxPackage} with apt-get download");
            var meta = Download(work.FullName, KernelMetaPackage);
            // The meta package depends on the versioned image package, e.g. linux-image-6.1.0-56-cloud-amd64.
            var depends = Run("dpkg-deb", ["-f", meta, "Depends"], work.FullName).Trim();
            var imagePackage = depends.Split(',', StringSplitOptions.TrimEntries)
                .Select(d => d.Split(' ')[0])
                .FirstOrDefault(d => d.StartsWith("linux-image-", StringComparison.Ordinal))
                ?? throw new GuestFetchException($"{KernelMetaPackage} names no linux-image package in Depends: '{depends}'");
            var version = imagePackage["linux-image-".Length..];
            var image = Download(work.FullName, imagePackage);
            var busyboxDeb = Download(work.FullName, BusyboxPackage);

            progress.WriteLine($"actorvisor: unpacking {imagePackage}");
            var root = Path.Combine(work.FullName, "root");
            Run("dpkg-deb", ["-x", image, root], work.FullName);
            Run("dpkg-deb", ["-x", busyboxDeb, root], work.FullName);

            var dir = Path.Combine(GuestCache.Directory, version);
            Directory.CreateDirectory(dir);
            var files = Layout(dir, version);
            File.Copy(Path.Combine(root, "boot", $"vmlinuz-{version}"), files.Kernel, overwrite: true);
            File.Copy(Path.Combine(root, "bin", "busybox"), files.Busybox, overwrite: true);

            // Keep only the modules the initramfs carries (and their dependencies).
            var all = new KernelModules(Path.Combine(root, "lib", "modules", version));
            var keep = all.Closure(InitramfsBuilder.VirtioModules.Where(all.Contains));
            foreach (var m in keep)
            {
                var dest = Path.Combine(files.ModulesRoot, all.PathOf(m));
                Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
                File.Copy(Path.Combine(all.ModulesRoot, all.PathOf(m)), dest, overwrite: true);
            }
            File.WriteAllText(Path.Combine(files.ModulesRoot, "modules.dep"), all.ModulesDep(keep));

            progress.WriteLine($"actorvisor: writing the initramfs ({keep.Count} modules, busybox)");
            WriteInitramfs(files, InitramfsBuilder.DefaultInit, files.Initramfs);
            progress.WriteLine($"actorvisor: default guest ready in {dir}");
            return files;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>An initramfs from the cached guest with another /init.</summary>
    public static void WriteInitramfs(GuestFiles files, string initScript, string output, IReadOnlyList<ExtraFile>? extraFiles = null)
    {
        var modules = Directory.Exists(files.ModulesRoot) ? new KernelModules(files.ModulesRoot) : null;
        var tmp = output + ".tmp";
        using (var f = File.Create(tmp))
            InitramfsBuilder.Build(f, File.ReadAllBytes(files.Busybox), files.KernelVersion, modules, initScript, extraFiles);
        File.Move(tmp, output, overwrite: true);
    }

    private string Download(string dir, string package)
    {
        Run("apt-get", ["download", package], dir);
        return Directory.EnumerateFiles(dir, $"{package}_*.deb").SingleOrDefault()
               ?? throw new GuestFetchException($"apt-get download {package} produced no .deb");
    }

    private static string Run(string tool, string[] args, string cwd)
    {
        var psi = new ProcessStartInfo(tool, args)
        {
            WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var p = Process.Start(psi) ?? throw new GuestFetchException($"could not start {tool}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new GuestFetchException($"{tool} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr.Trim()}" +
                                          (tool == "apt-get" ? " (run 'apt-get update' first if the package lists are empty)" : ""));
        return stdout.Result;
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Any(d => File.Exists(Path.Combine(d, tool)));
}

public sealed class GuestFetchException(string message) : Exception(message);
