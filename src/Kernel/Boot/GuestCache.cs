namespace Actorvisor.Kernel.Boot;

/// <summary>Where the default guest (Debian's kernel and our initramfs) is cached: $XDG_CACHE_HOME/actorvisor.</summary>
public static class GuestCache
{
    public static string Directory
    {
        get
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "actorvisor");
        }
    }

    /// <summary>The cached Debian kernel (vmlinuz-*), if any.</summary>
    public static string? FindKernel() =>
        System.IO.Directory.Exists(Directory)
            ? System.IO.Directory.EnumerateFiles(Directory, "vmlinuz-*", SearchOption.AllDirectories).Order().LastOrDefault()
            : null;
}
