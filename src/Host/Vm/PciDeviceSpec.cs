using System.Globalization;

namespace Actorvisor.Host.Vm;

/// <summary>
/// A PCI function asked for with bhyve's <c>-s slot[:function],device[,options]</c> (or <c>-s 0:slot:function,...</c>),
/// or with the friendlier <c>--disk</c>, <c>--rng</c>, <c>--net</c> forms. Slot -1 means "the next free slot".
/// <paramref name="Options"/> is what followed the device name, passed to the device's constructor as given.
/// </summary>
public sealed record PciDeviceSpec(int Slot, int Function, string Device, string Options)
{
    /// <summary>bhyve's fixed functions: the host bridge at slot 0 and the LPC bridge at slot 31, always present.</summary>
    public const string HostBridge = "hostbridge", Lpc = "lpc";
    public const int HostBridgeSlot = 0, LpcSlot = 31;
    /// <summary>Where automatic placement (<c>--disk</c> ...) starts.</summary>
    public const int FirstFreeSlot = 2;

    public override string ToString() =>
        $"{(Slot < 0 ? "auto" : Slot.ToString(CultureInfo.InvariantCulture))}:{Function},{Device}{(Options.Length > 0 ? "," + Options : "")}";

    /// <summary>Parses one <c>-s</c> value; null and an error when it is malformed (the device name is checked by <see cref="Resolve"/>).</summary>
    public static PciDeviceSpec? TryParse(string text, out string? error)
    {
        error = null;
        var comma = text.IndexOf(',');
        if (comma <= 0) return Fail<PciDeviceSpec>(out error, $"-s {text}: expected slot[:function],device[,options]");
        var where = text[..comma].Split(':');
        var rest = text[(comma + 1)..];
        var comma2 = rest.IndexOf(',');
        var device = (comma2 < 0 ? rest : rest[..comma2]).Trim();
        var options = comma2 < 0 ? "" : rest[(comma2 + 1)..];
        if (device.Length == 0) return Fail<PciDeviceSpec>(out error, $"-s {text}: no device name");
        if (where.Length == 3)
        {
            if (!int.TryParse(where[0], NumberStyles.None, CultureInfo.InvariantCulture, out var bus) || bus != 0)
                return Fail<PciDeviceSpec>(out error, $"-s {text}: only bus 0 exists");
            where = where[1..];
        }
        if (where.Length > 2) return Fail<PciDeviceSpec>(out error, $"-s {text}: expected slot[:function] or bus:slot:function");
        if (!int.TryParse(where[0], NumberStyles.None, CultureInfo.InvariantCulture, out var slot) || slot > 31)
            return Fail<PciDeviceSpec>(out error, $"-s {text}: slot '{where[0]}' is not a number from 0 to 31");
        var function = 0;
        if (where.Length == 2 && (!int.TryParse(where[1], NumberStyles.None, CultureInfo.InvariantCulture, out function) || function > 7))
            return Fail<PciDeviceSpec>(out error, $"-s {text}: function '{where[1]}' is not a number from 0 to 7");
        return new PciDeviceSpec(slot, function, device, options);
    }

    /// <summary>
    /// Checks a whole list (device names known, slots free, no duplicates, function 0 present in every slot
    /// used, the bridges only at their slots) and gives each automatic spec a slot. Null and an error when not.
    /// The host bridge and LPC entries bhyve users write are accepted and dropped: both are always there.
    /// </summary>
    public static IReadOnlyList<PciDeviceSpec>? Resolve(IEnumerable<PciDeviceSpec> specs, Func<string, bool> known, out string? error)
    {
        error = null;
        var placed = new Dictionary<(int, int), PciDeviceSpec>();
        var auto = new List<PciDeviceSpec>();
        foreach (var s in specs)
        {
            if (s.Device is HostBridge or Lpc)
            {
                var at = s.Device == HostBridge ? HostBridgeSlot : LpcSlot;
                if (s.Slot != at || s.Function != 0) return Fail<IReadOnlyList<PciDeviceSpec>>(out error, $"-s {s}: the {s.Device} is always at slot {at}, function 0");
                continue;
            }
            if (!known(s.Device)) return Fail<IReadOnlyList<PciDeviceSpec>>(out error, $"-s {s}: unknown PCI device '{s.Device}' (known: {string.Join(", ", VirtioDeviceCatalog.Names)})");
            if (s.Slot < 0)
            {
                auto.Add(s);
                continue;
            }
            if (s.Slot is HostBridgeSlot or LpcSlot) return Fail<IReadOnlyList<PciDeviceSpec>>(out error, $"-s {s}: slot {s.Slot} holds the {(s.Slot == 0 ? HostBridge : Lpc)}");
            if (!placed.TryAdd((s.Slot, s.Function), s))
                return Fail<IReadOnlyList<PciDeviceSpec>>(out error, $"-s {s}: slot {s.Slot} function {s.Function} is already taken by {placed[(s.Slot, s.Function)].Device}");
        }
        foreach (var s in auto)
        {
            var slot = FirstFreeSlot;
            while (slot < LpcSlot && placed.Keys.Any(k => k.Item1 == slot)) slot++;
            if (slot >= LpcSlot) return Fail<IReadOnlyList<PciDeviceSpec>>(out error, $"no free PCI slot for {s.Device}");
            placed[(slot, 0)] = s with { Slot = slot, Function = 0 };
        }
        foreach (var (slot, function) in placed.Keys)
            if (function != 0 && !placed.ContainsKey((slot, 0)))
                return Fail<IReadOnlyList<PciDeviceSpec>>(out error, $"-s {slot}:{function}: slot {slot} has no function 0 (a guest scans function 0 first)");
        return placed.OrderBy(p => p.Key.Item1).ThenBy(p => p.Key.Item2).Select(p => p.Value).ToArray();
    }

    private static T? Fail<T>(out string? error, string message) where T : class
    {
        error = message;
        return null;
    }
}
