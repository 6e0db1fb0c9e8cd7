using System.Globalization;
using Actorvisor.Actors.Devices.DebugExit;

namespace Actorvisor.Host.Vm;

/// <summary>An optional device asked for with <c>--device NAME[,key=value...]</c>, as QEMU's -device.</summary>
public abstract record DeviceSpec
{
    /// <summary>QEMU's isa-debug-exit: a write of V ends the run with status (V &lt;&lt; 1) | 1.</summary>
    public sealed record IsaDebugExit(ushort IoBase, ushort IoSize) : DeviceSpec;

    /// <summary>QEMU's pc-testdev (kvm-unit-tests): scratch, page-flush and IRQ-line ports, a 64 KiB MMIO window.</summary>
    public sealed record PcTestdev : DeviceSpec;

    public static readonly IReadOnlyList<string> KnownDevices = ["isa-debug-exit", "pc-testdev"];

    public static string NameOf(DeviceSpec spec) => spec switch
    {
        IsaDebugExit d => $"isa-debug-exit,iobase=0x{d.IoBase:x},iosize={d.IoSize}",
        PcTestdev => "pc-testdev",
        _ => spec.GetType().Name,
    };

    /// <summary>Parses one <c>--device</c> value; returns null and an error that names the problem.</summary>
    public static DeviceSpec? TryParse(string text, out string? error)
    {
        error = null;
        var parts = text.Split(',');
        var name = parts[0].Trim();
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in parts.Skip(1))
        {
            var eq = p.IndexOf('=');
            if (eq <= 0)
            {
                error = $"--device {text}: option '{p}' is not key=value";
                return null;
            }
            var key = p[..eq].Trim();
            if (!options.TryAdd(key, p[(eq + 1)..].Trim()))
            {
                error = $"--device {text}: option '{key}' is given twice";
                return null;
            }
        }

        switch (name)
        {
            case "isa-debug-exit":
            {
                if (!OnlyOptions(text, options, ["iobase", "iosize"], out error)) return null;
                uint ioBase = DebugExit.DefaultIoBase, ioSize = DebugExit.DefaultIoSize;
                if (options.TryGetValue("iobase", out var b) && !TryParseNumber(b, out ioBase))
                    return Fail(out error, $"--device {text}: iobase '{b}' is not a number (decimal or 0x hex)");
                if (options.TryGetValue("iosize", out var s) && !TryParseNumber(s, out ioSize))
                    return Fail(out error, $"--device {text}: iosize '{s}' is not a number (decimal or 0x hex)");
                if (ioSize is not (1 or 2 or 4))
                    return Fail(out error, $"--device {text}: iosize must be 1, 2 or 4");
                if (ioBase + ioSize > 0x10000)
                    return Fail(out error, $"--device {text}: ports 0x{ioBase:x}+{ioSize} leave the 64 KiB I/O space");
                return new IsaDebugExit((ushort)ioBase, (ushort)ioSize);
            }
            case "pc-testdev":
                return OnlyOptions(text, options, [], out error) ? new PcTestdev() : null;
            default:
                return Fail(out error, $"--device {text}: unknown device '{name}' (known: {string.Join(", ", KnownDevices)})");
        }
    }

    private static bool OnlyOptions(string text, Dictionary<string, string> options, string[] allowed, out string? error)
    {
        var unknown = options.Keys.FirstOrDefault(k => !allowed.Contains(k));
        error = unknown is null ? null
            : allowed.Length == 0 ? $"--device {text}: this device takes no options ('{unknown}')"
            : $"--device {text}: unknown option '{unknown}' (it takes {string.Join(", ", allowed)})";
        return unknown is null;
    }

    private static DeviceSpec? Fail(out string? error, string message)
    {
        error = message;
        return null;
    }

    private static bool TryParseNumber(string s, out uint value) =>
        s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? uint.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
