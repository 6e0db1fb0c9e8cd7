using Actorvisor.Actors.Devices.Virtio;

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

    /// <summary>The devices of this build (their options: <see cref="VirtioDeviceOptions"/>).</summary>
    private static readonly (string Name, Constructor Create)[] BuiltIn =
    [
        ("virtio-blk", VirtioDeviceOptions.Blk),
        ("virtio-rng", VirtioDeviceOptions.Rng),
        ("virtio-console", VirtioDeviceOptions.Console),
        ("virtio-net", VirtioDeviceOptions.Net),
    ];

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
