using Actorvisor.Actors.Devices.Virtio;
using Actorvisor.Actors.Devices.Virtio.Blk;
using Actorvisor.Actors.Devices.Virtio.Rng;

namespace Actorvisor.Host.Vm;

/// <summary>
/// The table from a PCI device name (<c>-s 3,virtio-blk,disk.img</c>) to the constructor of its
/// <see cref="IVirtioDevice"/>. THE registration point for virtio device models: each one adds a line to
/// <see cref="BuiltIn"/>; tests may <see cref="Register"/> their own. A constructor gets the options text after
/// the device name and throws <see cref="ArgumentException"/> (with a message for the user) when it is wrong.
/// </summary>
public static class VirtioDeviceCatalog
{
    public delegate IVirtioDevice Constructor(string options);

    private static readonly Dictionary<string, Constructor> Table = new(StringComparer.Ordinal);
    private static readonly object Lock = new();

    /// <summary>The devices of this build; "virtio-net" and "virtio-console" (their backends' options) are still to be added here.</summary>
    private static readonly (string Name, Constructor Create)[] BuiltIn =
    [
        ("virtio-rng", options => options.Length == 0 ? new VirtioRng() : throw new ArgumentException($"virtio-rng takes no options ('{options}')")),
        ("virtio-blk", Blk),
    ];

    /// <summary>virtio-blk,PATH[,ro]: a raw image, read-write unless "ro".</summary>
    private static IVirtioDevice Blk(string options)
    {
        var parts = options.Split(',');
        if (parts[0].Length == 0) throw new ArgumentException("virtio-blk needs an image path: virtio-blk,PATH[,ro]");
        var extra = parts.Skip(1).ToArray();
        if (extra.Any(p => p != "ro")) throw new ArgumentException($"virtio-blk,{options}: the only option is 'ro'");
        return new VirtioBlk(new VirtioBlkOptions(parts[0], ReadOnly: extra.Contains("ro")));
    }

    static VirtioDeviceCatalog()
    {
        foreach (var (name, create) in BuiltIn) Table[name] = create;
    }

    public static void Register(string name, Constructor create)
    {
        lock (Lock) Table[name] = create;
    }

    public static bool IsKnown(string name)
    {
        lock (Lock) return Table.ContainsKey(name);
    }

    public static IReadOnlyList<string> Names
    {
        get { lock (Lock) return Table.Keys.Order().ToArray(); }
    }

    public static IVirtioDevice Create(string name, string options)
    {
        Constructor create;
        lock (Lock)
            if (!Table.TryGetValue(name, out create!)) throw new ArgumentException($"unknown PCI device '{name}'");
        return create(options);
    }
}
