using System.Globalization;
using System.Text;
using System.Text.Json;
using Actorvisor.Kernel.Telemetry;

namespace Actorvisor.Host.Telemetry;

/// <summary>
/// What <c>actorvisor trace summarize</c> computes from a JSON-lines trace file: the top talkers (traced accesses
/// per device and direction) and interrupt latency percentiles per GSI and per vector, a latency being the time
/// from an interrupt's <c>irq.raise</c> span to its <c>irq.inject</c> span in the same trace. Percentiles are
/// nearest-rank: the p-th of n sorted values is the ceil(p/100 * n)-th.
/// </summary>
public sealed class TraceSummary
{
    public sealed record Talker(string Device, string Direction, long Accesses);
    public sealed record Latencies(string Key, int Count, double P50Us, double P90Us, double P99Us, double MaxUs);

    public IReadOnlyList<Talker> Talkers { get; }
    public IReadOnlyList<Latencies> ByGsi { get; }
    public IReadOnlyList<Latencies> ByVector { get; }
    public long Spans { get; }
    /// <summary>Interrupt traces that were raised but never injected (masked, lost, cut off by the run's end).</summary>
    public int NotInjected { get; }

    private TraceSummary(IReadOnlyList<Talker> talkers, IReadOnlyList<Latencies> byGsi, IReadOnlyList<Latencies> byVector, long spans, int notInjected)
    {
        Talkers = talkers;
        ByGsi = byGsi;
        ByVector = byVector;
        Spans = spans;
        NotInjected = notInjected;
    }

    public static TraceSummary Read(string path)
    {
        var talkers = new Dictionary<(string, string), long>();
        var raised = new Dictionary<string, (long StartNs, int Gsi)>();
        var injected = new Dictionary<string, (long StartNs, int Vector)>();
        long spans = 0;
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(line);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: not a JSON span ({e.Message})");
            }
            using (doc)
            {
                spans++;
                var span = doc.RootElement;
                var name = span.GetProperty("name").GetString();
                var attrs = span.TryGetProperty("attributes", out var a) ? a : default;
                var trace = span.GetProperty("trace_id").GetString()!;
                var start = span.GetProperty("start_ns").GetInt64();
                switch (name)
                {
                    case SpanNames.IoRead or SpanNames.IoWrite:
                        var key = (Str(attrs, TelemetryAttributes.DeviceName) ?? "?", name == SpanNames.IoRead ? "read" : "write");
                        talkers[key] = talkers.GetValueOrDefault(key) + 1;
                        break;
                    case SpanNames.Raise:
                        raised[trace] = (start, Int(attrs, TelemetryAttributes.IrqGsi) ?? -1);
                        break;
                    case SpanNames.Inject:
                        injected.TryAdd(trace, (start, Int(attrs, TelemetryAttributes.IrqVector) ?? -1));
                        break;
                }
            }
        }
        var byGsi = new Dictionary<string, List<double>>();
        var byVector = new Dictionary<string, List<double>>();
        var notInjected = 0;
        foreach (var (trace, r) in raised)
        {
            if (!injected.TryGetValue(trace, out var i))
            {
                notInjected++;
                continue;
            }
            var us = (i.StartNs - r.StartNs) / 1000.0;
            Bucket(byGsi, r.Gsi < 0 ? "msi" : r.Gsi.ToString(CultureInfo.InvariantCulture)).Add(us);
            Bucket(byVector, $"0x{i.Vector:x2}").Add(us);
        }
        return new TraceSummary(
            talkers.Select(t => new Talker(t.Key.Item1, t.Key.Item2, t.Value)).OrderByDescending(t => t.Accesses).ThenBy(t => t.Device).ToList(),
            Percentiles(byGsi), Percentiles(byVector), spans, notInjected);
    }

    private static List<double> Bucket(Dictionary<string, List<double>> d, string key) =>
        d.TryGetValue(key, out var l) ? l : d[key] = new List<double>();

    private static List<Latencies> Percentiles(Dictionary<string, List<double>> groups) =>
        groups.Select(g =>
        {
            var v = g.Value.Order().ToArray();
            return new Latencies(g.Key, v.Length, Rank(v, 50), Rank(v, 90), Rank(v, 99), v[^1]);
        }).OrderBy(l => l.Key.Length).ThenBy(l => l.Key, StringComparer.Ordinal).ToList();

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    public static double Rank(double[] sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static string? Str(JsonElement attrs, string name) =>
        attrs.ValueKind == JsonValueKind.Object && attrs.TryGetProperty(name, out var v) ? v.ToString() : null;

    private static int? Int(JsonElement attrs, string name) =>
        attrs.ValueKind == JsonValueKind.Object && attrs.TryGetProperty(name, out var v) && v.TryGetInt32(out var i) ? i : null;

    public string Format(int top = 20)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{Spans} spans");
        sb.AppendLine();
        sb.AppendLine("Top talkers (traced accesses)");
        sb.AppendLine($"{"device",-16} {"direction",-9} {"accesses",10}");
        foreach (var t in Talkers.Take(top)) sb.AppendLine(CultureInfo.InvariantCulture, $"{t.Device,-16} {t.Direction,-9} {t.Accesses,10}");
        if (Talkers.Count == 0) sb.AppendLine("(no io.* spans: trace with --trace 'io.*')");
        Table(sb, "Interrupt latency by GSI, raise → injection (µs)", "gsi", ByGsi);
        Table(sb, "Interrupt latency by vector, raise → injection (µs)", "vector", ByVector);
        if (NotInjected > 0) sb.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"{NotInjected} traced interrupts were raised but never injected");
        return sb.ToString();
    }

    private static void Table(StringBuilder sb, string title, string key, IReadOnlyList<Latencies> rows)
    {
        sb.AppendLine().AppendLine(title);
        sb.AppendLine($"{key,-8} {"count",8} {"p50",10} {"p90",10} {"p99",10} {"max",10}");
        foreach (var r in rows)
            sb.AppendLine(CultureInfo.InvariantCulture, $"{r.Key,-8} {r.Count,8} {r.P50Us,10:F1} {r.P90Us,10:F1} {r.P99Us,10:F1} {r.MaxUs,10:F1}");
        if (rows.Count == 0) sb.AppendLine("(no traced interrupts: trace with --trace 'irq.*')");
    }
}
