using System.Text.RegularExpressions;
using Actorvisor.Host.Vm;
using Actorvisor.Kernel.Cpu;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Actorvisor.Host.Settings;

/// <summary>A config file that cannot be used; the message names the file, the line and the problem.</summary>
public sealed class ConfigFileException(string message) : Exception(message);

/// <summary>
/// `actorvisor run --config FILE` (bhyve's -k): YAML whose keys are `run`'s long flags without the dashes.
/// Either one VM at the top level, or several under <c>vms:</c>, a list; they run in one process.
/// <code>
/// vms:
///   - name: web
///     kernel: bzImage          # paths are relative to the file's directory
///     memory: 512M
///     cpus: 2                  # or "cpus=2,sockets=1,cores=2"
///     serial: file:web.log
///   - name: db
///     kernel: db.elf
///     device: [isa-debug-exit]
/// </code>
/// <c>supervision</c> (file only) maps device actor names (<c>uart-0</c>, <c>uart-*</c>, <c>*</c>) to stop, resume,
/// restart or escalate. Unknown keys, values the flags would refuse, duplicate names and more than one VM on the terminal
/// (serial: stdio) are errors, reported with their line.
/// </summary>
public static partial class VmConfigFile
{
    /// <summary>
    /// A VM's keys: `run`'s per-VM flags by their long names (<c>slot</c> is <c>-s</c>), and <c>supervision</c> (a map
    /// of device to policy; <c>supervise</c> takes the flag's DEVICE=POLICY items instead).
    /// </summary>
    public static readonly string[] Keys =
        ["name", "kernel", "initrd", "memory", "cpus", "cmdline", "module", "device", "serial", "no-reboot", "supervision",
         "supervise", "deterministic", "record", "replay", "faults", "fault-seed", "slot", "disk", "rng", "net"];

    /// <summary>The process's keys (top level, also beside <c>vms:</c>): `run`'s flags that are not per VM.</summary>
    public static readonly string[] ProcessKeys =
        ["stats", "run-dir", "trace", "trace-sample", "otlp", "otlp-protocol", "metrics", "trace-file"];

    /// <summary>A config file: its VMs and the process-wide settings.</summary>
    public sealed record ConfigFile(IReadOnlyList<VmSettings> Vms, ProcessSettings Process);

    public static IReadOnlyList<VmSettings> Load(string path) => LoadFile(path).Vms;

    public static ConfigFile LoadFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigFileException($"{path}: {e.Message}");
        }
        return ParseFile(text, Path.GetDirectoryName(Path.GetFullPath(path))!, path);
    }

    public static IReadOnlyList<VmSettings> Parse(string yaml, string baseDirectory, string fileName) =>
        ParseFile(yaml, baseDirectory, fileName).Vms;

    public static ConfigFile ParseFile(string yaml, string baseDirectory, string fileName)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ConfigFileException($"{fileName}:{e.Start.Line}:{e.Start.Column}: not valid YAML: {e.InnerException?.Message ?? e.Message}");
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new ConfigFileException($"{fileName}: expected a mapping of settings, or 'vms:' with a list of them");
        if (stream.Documents.Count > 1) throw Error(fileName, stream.Documents[1].RootNode, "one YAML document expected");

        var entries = new List<(VmSettings Settings, YamlNode Node)>();
        var process = ParseProcess(root, baseDirectory, fileName);
        if (root.Children.Keys.OfType<YamlScalarNode>().Any(k => k.Value == "vms"))
        {
            if (root.Children.Keys.OfType<YamlScalarNode>().FirstOrDefault(k => k.Value != "vms" && Array.IndexOf(ProcessKeys, k.Value) < 0) is { } stray)
                throw Error(fileName, stray, $"with 'vms:', every VM setting belongs to a VM in the list; only {string.Join(", ", ProcessKeys)} stand beside it");
            if (root.Children[new YamlScalarNode("vms")] is not YamlSequenceNode list || list.Children.Count == 0)
                throw Error(fileName, root, "'vms' must be a non-empty list of VMs");
            foreach (var item in list.Children)
            {
                if (item is not YamlMappingNode vm) throw Error(fileName, item, "each entry of 'vms' must be a mapping of settings");
                entries.Add((ParseVm(vm, baseDirectory, fileName), vm));
            }
        }
        else entries.Add((ParseVm(root, baseDirectory, fileName, topLevel: true), root));

        if (entries.Count > 1)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (s, node) in entries)
            {
                if (s.Name is null) throw Error(fileName, node, "with several VMs each needs a 'name'");
                if (!names.Add(s.Name)) throw Error(fileName, node, $"two VMs are named '{s.Name}'");
            }
        }
        return new ConfigFile(entries.Select(e => e.Settings).ToArray(), process);
    }

    /// <summary>The process keys of the top-level mapping.</summary>
    private static ProcessSettings ParseProcess(YamlMappingNode root, string baseDirectory, string fileName)
    {
        var p = new ProcessSettings();
        foreach (var (keyNode, value) in root.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value;
            if (key is null || Array.IndexOf(ProcessKeys, key) < 0) continue;
            var text = value is YamlScalarNode { Value: { Length: > 0 } v } ? v : throw Error(fileName, value, $"'{key}' must be a single value");
            p = key switch
            {
                "stats" => p with { Stats = Bool(fileName, value, key, text) },
                "run-dir" => p with { RunDir = Resolve(baseDirectory, text) },
                "trace" => p with { Trace = text },
                "trace-sample" => p with
                {
                    TraceSample = double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var r)
                        ? r : throw Error(fileName, value, $"trace-sample '{text}': expected a ratio between 0 and 1"),
                },
                "otlp" => p with { Otlp = text },
                "otlp-protocol" => p with { OtlpProtocol = text },
                "metrics" => p with { Metrics = text },
                "trace-file" => p with { TraceFile = Resolve(baseDirectory, text) },
                _ => p,
            };
        }
        // Checked as the flags are, so a bad value names its line now rather than failing the run later.
        p.Telemetry(out var error);
        if (error is not null) throw Error(fileName, root, error);
        return p;
    }

    private static bool Bool(string fileName, YamlNode node, string key, string text) => text switch
    {
        "true" or "yes" or "on" => true,
        "false" or "no" or "off" => false,
        _ => throw Error(fileName, node, $"{key} '{text}': expected true or false"),
    };

    private static string Resolve(string baseDirectory, string path) =>
        Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(baseDirectory, path));

    private static VmSettings ParseVm(YamlMappingNode vm, string baseDirectory, string fileName, bool topLevel = false)
    {
        var s = new VmSettings();
        foreach (var (keyNode, value) in vm.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value;
            if (topLevel && key is not null && Array.IndexOf(ProcessKeys, key) >= 0) continue;
            if (key is null || Array.IndexOf(Keys, key) < 0)
                throw Error(fileName, keyNode, Array.IndexOf(ProcessKeys, key) >= 0
                    ? $"'{key}' is a setting of the whole process: give it at the top level, beside 'vms'"
                    : $"unknown key '{key}'; known: {string.Join(", ", Keys)}, and at the top level {string.Join(", ", ProcessKeys)}");
            string Scalar()
            {
                if (value is YamlScalarNode { Value: { } v } && v.Length > 0) return v;
                throw Error(fileName, value, $"'{key}' must be a single value");
            }
            IReadOnlyList<string> List()
            {
                if (value is YamlScalarNode) return [Scalar()];
                if (value is YamlSequenceNode seq)
                    return seq.Children.Select(c => c is YamlScalarNode { Value: { Length: > 0 } v } ? v
                        : throw Error(fileName, c, $"each '{key}' entry must be a single value")).ToArray();
                throw Error(fileName, value, $"'{key}' must be a value or a list of values");
            }
            string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(baseDirectory, path));

            switch (key)
            {
                case "name":
                    var name = Scalar();
                    if (!NamePattern().IsMatch(name))
                        throw Error(fileName, value, $"VM name '{name}' must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit");
                    s = s with { Name = name };
                    break;
                case "kernel":
                    s = s with { Kernel = Resolve(Scalar()) };
                    break;
                case "initrd":
                    s = s with { Initrd = Resolve(Scalar()) };
                    break;
                case "cmdline":
                    s = s with { Cmdline = Scalar() };
                    break;
                case "memory":
                    if (!SizeParser.TryParse(Scalar(), out var bytes, out var sizeError)) throw Error(fileName, value, $"memory: {sizeError}");
                    s = s with { Memory = bytes };
                    break;
                case "cpus":
                    if (!CpuTopology.TryParse(Scalar(), out var topology, out var cpuError)) throw Error(fileName, value, $"cpus: {cpuError}");
                    s = s with { Cpus = topology };
                    break;
                case "module":
                    s = s with { Modules = List().Select(m => Resolve(m.Split(',', 2)[0]) + (m.Contains(',') ? "," + m.Split(',', 2)[1] : "")).ToArray() };
                    break;
                case "device":
                    s = s with
                    {
                        Devices = List().Select(d => DeviceSpec.TryParse(d, out var deviceError) ?? throw Error(fileName, value, $"device: {deviceError}")).ToArray(),
                    };
                    break;
                case "serial":
                    var serial = Scalar();
                    if (serial.StartsWith("file:", StringComparison.Ordinal) && serial.Length > 5) serial = "file:" + Resolve(serial[5..]);
                    else if (serial != "stdio") throw Error(fileName, value, $"serial '{serial}': expected 'stdio' or 'file:PATH'");
                    s = s with { Serial = serial };
                    break;
                case "supervision":
                    if (value is not YamlMappingNode map) throw Error(fileName, value, "'supervision' must map device names to policies");
                    var policies = new Dictionary<string, DevicePolicy>(StringComparer.Ordinal);
                    foreach (var (d, p) in map.Children)
                    {
                        var device = (d as YamlScalarNode)?.Value;
                        if (string.IsNullOrEmpty(device)) throw Error(fileName, d, "a supervision key must be a device name, NAME* or *");
                        if (p is not YamlScalarNode { Value: { } text } || !DeviceSupervision.TryParsePolicy(text, out var policy))
                            throw Error(fileName, p, $"supervision of '{device}': expected stop, resume, restart, restart-power-on or escalate");
                        policies[device] = policy;
                    }
                    s = s with { Supervision = new DeviceSupervision(policies) };
                    break;
                case "supervise":
                    if (!DeviceSupervision.TryParse(List(), out var supervised, out var superviseError))
                        throw Error(fileName, value, superviseError!);
                    s = s with { Supervision = supervised };
                    break;
                case "no-reboot":
                    s = s with { NoReboot = Bool(fileName, value, key, Scalar()) };
                    break;
                case "deterministic":
                    s = s with { Deterministic = Bool(fileName, value, key, Scalar()) };
                    break;
                case "rng":
                    s = s with { Rng = Bool(fileName, value, key, Scalar()) };
                    break;
                case "record":
                    s = s with { Record = Resolve(Scalar()) };
                    break;
                case "replay":
                    s = s with { Replay = Resolve(Scalar()) };
                    break;
                case "faults":
                    s = s with { Faults = List().Select(Resolve).ToArray() };
                    break;
                case "fault-seed":
                    s = s with
                    {
                        FaultSeed = ulong.TryParse(Scalar(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seed)
                            ? seed : throw Error(fileName, value, $"fault-seed '{Scalar()}': expected a whole number"),
                    };
                    break;
                case "slot":
                    s = s with { Slots = List().Select(x => ResolveSlot(x, Resolve, fileName, value)).ToArray() };
                    break;
                case "disk":
                    s = s with { Disks = List().Select(d => d.StartsWith(',') ? d : Resolve(d.Split(',', 2)[0]) + (d.Contains(',') ? "," + d.Split(',', 2)[1] : "")).ToArray() };
                    break;
                case "net":
                    s = s with { Nets = List() };
                    break;
            }
        }
        return s;
    }

    /// <summary>A slot spec with a virtio-blk image path made relative to the file, as every path in it.</summary>
    private static string ResolveSlot(string text, Func<string, string> resolve, string fileName, YamlNode node)
    {
        if (PciDeviceSpec.TryParse(text, out var error) is not { } spec) throw Error(fileName, node, $"slot: {error}");
        if (spec.Device != "virtio-blk" || spec.Options.Length == 0 || spec.Options.StartsWith(',')) return text;
        var comma = spec.Options.IndexOf(',');
        var path = comma < 0 ? spec.Options : spec.Options[..comma];
        if (path.Contains('=')) return text; // a key=value option, not a path
        return text[..^spec.Options.Length] + resolve(path) + (comma < 0 ? "" : spec.Options[comma..]);
    }

    private static ConfigFileException Error(string fileName, YamlNode node, string message) =>
        new($"{fileName}:{node.Start.Line}:{node.Start.Column}: {message}");

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex NamePattern();
}
