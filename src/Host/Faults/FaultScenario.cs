using System.Globalization;
using Actorvisor.Kernel.Faults;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Actorvisor.Host.Faults;

/// <summary>
/// A fault scenario file (<c>--faults FILE</c>, YAML): an optional <c>seed</c> and a list of <c>rules</c>, each a
/// flat map. docs/FAULTS.md describes the keys. Every problem is reported with the file, the rule and the key.
/// </summary>
public sealed record FaultScenario(ulong? Seed, IReadOnlyList<FaultRule> Rules)
{
    private static readonly HashSet<string> RuleKeys =
    [
        "name", "device", "kind", "address", "gsi", "action", "delay", "value", "mask", "random-bit",
        "after", "every", "probability", "limit", "once", "from", "to", "in-state", "to-state", "sectors", "bytes",
    ];

    /// <exception cref="FormatException">The file is not a valid scenario; the message says where and why.</exception>
    public static FaultScenario Load(string path) => Parse(File.ReadAllText(path), path);

    /// <summary>Several files as one scenario: their rules in order (names must stay unique), the first seed given.</summary>
    public static FaultScenario LoadAll(IEnumerable<string> paths)
    {
        var all = paths.Select(Load).ToArray();
        var names = new HashSet<string>();
        foreach (var r in all.SelectMany(s => s.Rules))
            if (!names.Add(r.Name)) throw new FormatException($"two rules are named '{r.Name}' in {string.Join(", ", paths)}");
        return new FaultScenario(all.Select(s => s.Seed).FirstOrDefault(s => s is not null), all.SelectMany(s => s.Rules).ToArray());
    }

    /// <summary>
    /// Each rule of a scenario file as its keys and values, as `ctl NAME faults add KEY=VALUE ...` takes them:
    /// a file's rules added to a running VM one by one are the same rules.
    /// </summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, string>> RuleMaps(string yaml, string source = "scenario")
    {
        Parse(yaml, source); // the same checks as a file given at start
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var result = new List<IReadOnlyDictionary<string, string>>();
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root) return result;
        foreach (var (k, v) in root.Children)
            if (k is YamlScalarNode { Value: "rules" } && v is YamlSequenceNode list)
                foreach (var item in list.OfType<YamlMappingNode>())
                    result.Add(item.Children.ToDictionary(e => ((YamlScalarNode)e.Key).Value!, e => ((YamlScalarNode)e.Value).Value!));
        return result;
    }

    public static FaultScenario Parse(string yaml, string source = "scenario")
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new FormatException($"{source}: not YAML: {e.Message}");
        }
        if (stream.Documents.Count == 0) return new FaultScenario(null, []);
        if (stream.Documents[0].RootNode is not YamlMappingNode root) throw new FormatException($"{source}: expected a map with 'seed' and 'rules'");
        ulong? seed = null;
        var rules = new List<FaultRule>();
        foreach (var (k, v) in root.Children)
        {
            var key = Scalar(k, source, "a top-level key");
            switch (key)
            {
                case "seed":
                    seed = ParseUnsigned(Scalar(v, source, "seed"), $"{source}: seed");
                    break;
                case "rules":
                    if (v is not YamlSequenceNode list) throw new FormatException($"{source}: 'rules' must be a list");
                    var i = 0;
                    foreach (var item in list)
                    {
                        i++;
                        if (item is not YamlMappingNode map) throw new FormatException($"{source}: rule {i} must be a map");
                        rules.Add(ParseRule(map, $"{source}: rule {i}"));
                    }
                    break;
                default:
                    throw new FormatException($"{source}: unknown key '{key}' (expected seed, rules)");
            }
        }
        var names = new HashSet<string>();
        foreach (var r in rules)
            if (!names.Add(r.Name)) throw new FormatException($"{source}: two rules are named '{r.Name}'");
        return new FaultScenario(seed, rules);
    }

    private static FaultRule ParseRule(YamlMappingNode map, string at)
    {
        var f = new Dictionary<string, string>();
        foreach (var (k, v) in map.Children) f[Scalar(k, at, "a key")] = Scalar(v, at, "a value");
        return ParseRule(f, at);
    }

    /// <summary>One rule from its keys and values (a scenario file's map, or `ctl NAME faults add key=value ...`).</summary>
    public static FaultRule ParseRule(IReadOnlyDictionary<string, string> f, string at)
    {
        foreach (var key in f.Keys)
            if (!RuleKeys.Contains(key)) throw new FormatException($"{at}: unknown key '{key}' (known: {string.Join(", ", RuleKeys)})");
        var name = f.GetValueOrDefault("name") ?? throw new FormatException($"{at}: a rule needs a name");
        at = $"{at.Split(": rule")[0]}: rule '{name}'";
        FaultKind? kind = null;
        if (f.TryGetValue("kind", out var kindText))
        {
            if (!FaultPoint.TryParseKind(kindText, out var k))
                throw new FormatException($"{at}: kind '{kindText}' is not one of {string.Join(", ", Enum.GetValues<FaultKind>().Select(FaultPoint.KindName))}");
            kind = k;
        }
        if (new[] { "address", "gsi", "sectors" }.Count(f.ContainsKey) > 1) throw new FormatException($"{at}: give one of address, gsi and sectors");
        (ulong? from, ulong? to) = (null, null);
        if (f.TryGetValue("gsi", out var gsiText))
        {
            if (kind is not (null or FaultKind.Irq)) throw new FormatException($"{at}: gsi applies to kind irq");
            kind = FaultKind.Irq;
            (from, to) = ParseRange(gsiText, $"{at}: gsi");
        }
        else if (f.TryGetValue("sectors", out var sectorsText))
        {
            if (!FaultPoint.IsBlock(kind)) throw new FormatException($"{at}: sectors applies to kinds blk.read and blk.write");
            (from, to) = ParseRange(sectorsText, $"{at}: sectors");
        }
        else if (f.TryGetValue("address", out var addressText)) (from, to) = ParseRange(addressText, $"{at}: address");
        var bytes = f.TryGetValue("bytes", out var bytesText) ? ParseUnsigned(bytesText, $"{at}: bytes") : 0;
        if (bytes > uint.MaxValue) throw new FormatException($"{at}: bytes {bytes} is too large");

        var actionText = f.GetValueOrDefault("action") ?? throw new FormatException($"{at}: a rule needs an action");
        var action = actionText switch
        {
            "drop" => new FaultAction(FaultVerdict.Drop),
            "delay" => new FaultAction(FaultVerdict.Delay, ParseDuration(f.GetValueOrDefault("delay")
                ?? throw new FormatException($"{at}: action delay needs 'delay'"), $"{at}: delay")),
            "duplicate" => new FaultAction(FaultVerdict.Duplicate),
            "replace" => new FaultAction(FaultVerdict.Replace, Value: ParseUnsigned(f.GetValueOrDefault("value")
                ?? throw new FormatException($"{at}: action replace needs 'value'"), $"{at}: value")),
            "corrupt" => new FaultAction(FaultVerdict.Corrupt,
                XorMask: f.TryGetValue("mask", out var m) ? ParseUnsigned(m, $"{at}: mask") : 0,
                RandomBit: f.TryGetValue("random-bit", out var rb) && ParseBool(rb, $"{at}: random-bit")),
            "crash" => new FaultAction(FaultVerdict.Crash, Bytes: (uint)bytes),
            "storm" => new FaultAction(FaultVerdict.Storm),
            "short" => new FaultAction(FaultVerdict.Short, Bytes: (uint)bytes),
            _ => throw new FormatException($"{at}: action '{actionText}' is not one of drop, delay, duplicate, replace, corrupt, crash, storm, short"),
        };
        long? limit = f.TryGetValue("limit", out var l) ? ParseLong(l, $"{at}: limit") : null;
        if (f.TryGetValue("once", out var once) && ParseBool(once, $"{at}: once")) limit = 1;
        var trigger = new FaultTrigger(
            After: f.TryGetValue("after", out var a) ? ParseLong(a, $"{at}: after") : 0,
            Every: f.TryGetValue("every", out var e) ? ParseLong(e, $"{at}: every") : 1,
            Probability: f.TryGetValue("probability", out var p) ? ParseDouble(p, $"{at}: probability") : 1.0,
            Limit: limit,
            WindowFrom: f.TryGetValue("from", out var wf) ? ParseDuration(wf, $"{at}: from") : null,
            WindowTo: f.TryGetValue("to", out var wt) ? ParseDuration(wt, $"{at}: to") : null);
        var rule = new FaultRule(name, new FaultTarget(f.GetValueOrDefault("device"), kind, from, to), action, trigger,
            f.GetValueOrDefault("in-state"), f.GetValueOrDefault("to-state"));
        var problems = rule.Validate().ToArray();
        if (problems.Length > 0) throw new FormatException($"{at.Split(": rule")[0]}: {string.Join("; ", problems)}");
        return rule;
    }

    private static string Scalar(YamlNode node, string at, string what) =>
        node is YamlScalarNode { Value: { } v } ? v : throw new FormatException($"{at}: {what} must be a plain value");

    public static (ulong, ulong) ParseRange(string text, string at)
    {
        var dash = text.IndexOf('-', 1);
        if (dash < 0)
        {
            var v = ParseUnsigned(text, at);
            return (v, v);
        }
        return (ParseUnsigned(text[..dash], at), ParseUnsigned(text[(dash + 1)..], at));
    }

    public static ulong ParseUnsigned(string text, string at)
    {
        text = text.Trim();
        var ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var v)
            : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        return ok ? v : throw new FormatException($"{at}: '{text}' is not a number");
    }

    private static long ParseLong(string text, string at) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw new FormatException($"{at}: '{text}' is not a number");

    private static double ParseDouble(string text, string at) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw new FormatException($"{at}: '{text}' is not a number");

    private static bool ParseBool(string text, string at) => text switch
    {
        "true" or "yes" => true,
        "false" or "no" => false,
        _ => throw new FormatException($"{at}: '{text}' is not true or false"),
    };

    /// <summary>A duration with a unit: ns, us, ms, s (e.g. 250us, 1.5s, -2ms).</summary>
    public static TimeSpan ParseDuration(string text, string at)
    {
        text = text.Trim();
        (string unit, double scale) = text switch
        {
            _ when text.EndsWith("ns", StringComparison.Ordinal) => ("ns", 0.01),
            _ when text.EndsWith("us", StringComparison.Ordinal) => ("us", 10.0),
            _ when text.EndsWith("ms", StringComparison.Ordinal) => ("ms", 10_000.0),
            _ when text.EndsWith('s') => ("s", 10_000_000.0),
            _ => ("", 0),
        };
        if (unit.Length == 0 || !double.TryParse(text.AsSpan(0, text.Length - unit.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var n)
            || double.IsNaN(n) || double.IsInfinity(n))
            throw new FormatException($"{at}: '{text}' is not a duration (a number with ns, us, ms or s)");
        return TimeSpan.FromTicks((long)Math.Round(n * scale));
    }
}
