using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>
/// otel-collector.yaml and dashboards/actorvisor.json: their structure, that they stay on 127.0.0.1, and that
/// the dashboard's queries are valid PromQL (promtool, when Debian's prometheus package is installed) over
/// the metric names our Prometheus endpoint exports.
/// </summary>
public class ConfigFilesTests
{
    private static string Root([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "../../.."));

    /// <summary>The Prometheus names of Meter "Actorvisor"'s instruments (dots → underscores, unit and _total suffixes).</summary>
    public static readonly string[] ExportedNames =
    [
        "actorvisor_vcpu_exits_total", "actorvisor_device_accesses_total", "actorvisor_interrupts_injected_total",
        "actorvisor_interrupts_raised_total", "actorvisor_vcpu_time_seconds_total", "actorvisor_mailbox_depth",
        "actorvisor_exit_duration_seconds_bucket", "actorvisor_interrupt_latency_seconds_bucket", "actorvisor_faults_total",
    ];

    private static YamlMappingNode Map(YamlNode node, string key) => (YamlMappingNode)((YamlMappingNode)node)[key];

    [Fact]
    public void TheCollectorTakesOtlpOnLoopbackAndSendsTracesOverOtlpAndMetricsToPrometheus()
    {
        var yaml = new YamlStream();
        yaml.Load(new StringReader(File.ReadAllText(Path.Combine(Root(), "otel-collector.yaml"))));
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var protocols = Map(Map(Map(root, "receivers"), "otlp"), "protocols");
        Assert.Equal("127.0.0.1:4317", Map(protocols, "grpc")["endpoint"].ToString());
        Assert.Equal("127.0.0.1:4318", Map(protocols, "http")["endpoint"].ToString());
        var exporters = Map(root, "exporters");
        Assert.StartsWith("127.0.0.1:", Map(exporters, "otlp/traces")["endpoint"].ToString());
        Assert.StartsWith("127.0.0.1:", Map(exporters, "prometheus")["endpoint"].ToString());
        var pipelines = Map(Map(root, "service"), "pipelines");
        string[] List(string pipeline, string part) =>
            ((YamlSequenceNode)Map(pipelines, pipeline)[part]).Children.Select(c => c.ToString()).ToArray();
        Assert.Equal(["otlp"], List("traces", "receivers"));
        Assert.Equal(["otlp/traces"], List("traces", "exporters"));
        Assert.Equal(["otlp"], List("metrics", "receivers"));
        Assert.Equal(["prometheus"], List("metrics", "exporters"));
        // Every processor a pipeline names is defined.
        var processors = Map(root, "processors").Children.Keys.Select(k => k.ToString()).ToHashSet();
        Assert.All(List("traces", "processors").Concat(List("metrics", "processors")), p => Assert.Contains(p, processors));
    }

    [Fact]
    public void TheDashboardShowsInterruptAndExitRatesAndLatenciesFromExportedMetrics()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root(), "dashboards", "actorvisor.json")));
        var panels = doc.RootElement.GetProperty("panels").EnumerateArray().ToList();
        var titles = panels.Select(p => p.GetProperty("title").GetString()!).ToList();
        Assert.Contains(titles, t => t.Contains("by GSI"));
        Assert.Contains(titles, t => t.Contains("by vector"));
        Assert.Contains(titles, t => t.Contains("Exits per second by reason"));
        Assert.Contains(titles, t => t.Contains("latency", StringComparison.OrdinalIgnoreCase));
        Assert.Equal(panels.Count, panels.Select(p => p.GetProperty("id").GetInt32()).Distinct().Count());
        var exprs = panels.SelectMany(p => p.GetProperty("targets").EnumerateArray()).Select(t => t.GetProperty("expr").GetString()!).ToList();
        Assert.NotEmpty(exprs);
        foreach (var e in exprs)
            foreach (Match m in Regex.Matches(e, @"actorvisor_[a-z_]+"))
                Assert.Contains(m.Value, ExportedNames);

        const string promtool = "/usr/bin/promtool";
        if (!File.Exists(promtool)) return; // structure checked; PromQL syntax needs Debian's prometheus package
        var rules = Path.GetTempFileName();
        try
        {
            // A rules file whose expressions are the dashboard's queries with Grafana's variables filled in.
            File.WriteAllLines(rules, new[] { "groups:", "  - name: dashboard", "    rules:" }.Concat(exprs.SelectMany((e, i) => new[]
            {
                $"      - record: actorvisor:dashboard_{i}",
                "        expr: " + JsonSerializer.Serialize(e.Replace("$__rate_interval", "1m").Replace("$vm", ".*")),
            })));
            using var p = Process.Start(new ProcessStartInfo(promtool, ["check", "rules", rules])
                { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(30000));
            Assert.True(p.ExitCode == 0, output);
            Assert.Contains($"{exprs.Count} rules found", output);
        }
        finally
        {
            File.Delete(rules);
        }
    }
}
