using System.CommandLine;
using System.CommandLine.Parsing;
using Actorvisor.Host.Vm;

namespace Actorvisor.Host;

/// <summary>
/// The PCI device options of <c>actorvisor run</c>: bhyve's <c>-s slot[:function],device[,options]</c>, and the
/// friendlier <c>--disk PATH[,ro]</c>, <c>--rng</c> and <c>--net tap=NAME</c>, which become virtio-blk, virtio-rng and
/// virtio-net specs in the next free slots. A malformed spec, an unknown device, a slot given twice or a bridge
/// slot taken is a command-line error.
/// </summary>
public sealed class PciOptions
{
    public required Option<string[]> Slot { get; init; }
    public required Option<string[]> Disk { get; init; }
    public required Option<bool> Rng { get; init; }
    public required Option<string[]> Net { get; init; }

    public static PciOptions Create() => new()
    {
        Slot = new Option<string[]>("--slot", "-s")
        {
            Description = "A PCI function, as bhyve: slot[:function],device[,options] (repeatable; 0 is the hostbridge, 31 the lpc)",
            Arity = ArgumentArity.ZeroOrMore,
            AllowMultipleArgumentsPerToken = false,
        },
        Disk = new Option<string[]>("--disk")
        {
            Description = "A virtio-blk disk on a raw image: PATH[,ro] (repeatable)",
            Arity = ArgumentArity.ZeroOrMore,
        },
        Rng = new Option<bool>("--rng") { Description = "A virtio-rng entropy device" },
        Net = new Option<string[]>("--net")
        {
            Description = "A virtio-net device on a host TAP: tap=NAME (repeatable)",
            Arity = ArgumentArity.ZeroOrMore,
        },
    };

    public void Validate(CommandResult r)
    {
        if (Specs(r.GetValue(Slot), r.GetValue(Disk), r.GetValue(Rng), r.GetValue(Net), out var error) is { } specs
            && PciDeviceSpec.Resolve(specs, VirtioDeviceCatalog.IsKnown, out error) is not null) return;
        r.AddError(error!);
    }

    public IReadOnlyList<PciDeviceSpec>? Resolve(ParseResult p, out string? error) =>
        Specs(p.GetValue(Slot), p.GetValue(Disk), p.GetValue(Rng), p.GetValue(Net), out error) is { } specs
            ? PciDeviceSpec.Resolve(specs, VirtioDeviceCatalog.IsKnown, out error)
            : null;

    /// <summary>The PCI functions these values ask for, placed and checked as the flags are (a config file's keys use it too).</summary>
    public static IReadOnlyList<PciDeviceSpec>? Resolve(IReadOnlyList<string>? slots, IReadOnlyList<string>? disks, bool rng,
        IReadOnlyList<string>? nets, out string? error) =>
        Specs(slots?.ToArray(), disks?.ToArray(), rng, nets?.ToArray(), out error) is { } specs
            ? PciDeviceSpec.Resolve(specs, VirtioDeviceCatalog.IsKnown, out error)
            : null;

    private static List<PciDeviceSpec>? Specs(string[]? slots, string[]? disks, bool rng, string[]? nets, out string? error)
    {
        error = null;
        var specs = new List<PciDeviceSpec>();
        foreach (var text in slots ?? [])
        {
            if (PciDeviceSpec.TryParse(text, out error) is not { } spec) return null;
            specs.Add(spec);
        }
        foreach (var d in disks ?? [])
        {
            if (d.Length == 0 || d.StartsWith(',')) { error = $"--disk '{d}': expected PATH[,ro]"; return null; }
            specs.Add(new PciDeviceSpec(-1, 0, "virtio-blk", d));
        }
        if (rng) specs.Add(new PciDeviceSpec(-1, 0, "virtio-rng", ""));
        foreach (var n in nets ?? [])
        {
            if (!n.StartsWith("tap=", StringComparison.Ordinal) || n.Length == 4) { error = $"--net '{n}': expected tap=NAME"; return null; }
            specs.Add(new PciDeviceSpec(-1, 0, "virtio-net", n));
        }
        return specs;
    }
}
