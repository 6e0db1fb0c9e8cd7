using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Actorvisor.Host;
using Actorvisor.Host.Telemetry;
using Actorvisor.Kernel.Telemetry;
using Actorvisor.TestSupport;
using OpenTelemetry;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>The JSON-lines trace file and <c>actorvisor trace summarize</c>.</summary>
[Collection(TelemetryCollection.Name)]
public sealed class TraceFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorvisor-trace-").FullName;

    /// <summary>Writes spans through the real exporter: interrupts with known raise → inject gaps, and accesses.</summary>
    private string WriteKnownTrace(IEnumerable<(int Gsi, int Vector, long LatencyUs)> interrupts, IEnumerable<(string Device, bool Write, int Count)> accesses)
    {
        var path = Path.Combine(_dir, "known.jsonl");
        using var exporter = new JsonLinesTraceExporter(path);
        var spans = new List<Activity>();
        var t0 = new DateTime(2026, 11, 26, 6, 0, 0, DateTimeKind.Utc);
        var i = 0;
        foreach (var (gsi, vector, latency) in interrupts)
        {
            var start = t0.AddMilliseconds(++i);
            var trace = ActivityTraceId.CreateRandom();
            var root = ActivitySpanId.CreateRandom();
            var raise = new Activity(SpanNames.Raise).SetParentId(trace, root, ActivityTraceFlags.Recorded).SetStartTime(start);
            raise.SetTag(TelemetryAttributes.IrqGsi, gsi);
            raise.Start().SetEndTime(start);
            var inject = new Activity(SpanNames.Inject).SetParentId(trace, root, ActivityTraceFlags.Recorded).SetStartTime(start.AddTicks(latency * 10));
            inject.SetTag(TelemetryAttributes.IrqVector, vector);
            inject.Start().SetEndTime(start.AddTicks(latency * 10));
            spans.Add(raise);
            spans.Add(inject);
        }
        foreach (var (device, write, count) in accesses)
            for (var n = 0; n < count; n++)
            {
                var a = new Activity(write ? SpanNames.IoWrite : SpanNames.IoRead).SetStartTime(t0);
                a.SetTag(TelemetryAttributes.DeviceName, device);
                a.Start().SetEndTime(t0.AddTicks(10));
                spans.Add(a);
            }
        foreach (var s in spans) s.Stop();
        exporter.Export(new Batch<Activity>(spans.ToArray(), spans.Count));
        exporter.Shutdown();
        return path;
    }

    [Fact]
    public void SummarizeGivesNearestRankPercentilesPerGsiAndVectorAndRanksTalkers()
    {
        // GSI 4 / vector 0x40: latencies 1..100 µs; GSI 8 / vector 0x38: 10, 20, 30 µs.
        var interrupts = Enumerable.Range(1, 100).Select(us => (4, 0x40, (long)us))
            .Concat([(8, 0x38, 10L), (8, 0x38, 30L), (8, 0x38, 20L)]).ToList();
        var path = WriteKnownTrace(interrupts, [("uart-0", true, 7), ("uart-0", false, 3), ("pit", true, 5)]);

        var s = TraceSummary.Read(path);
        Assert.Equal(2 * interrupts.Count + 15, s.Spans);
        var gsi4 = Assert.Single(s.ByGsi, l => l.Key == "4");
        Assert.Equal((100, 50.0, 90.0, 99.0, 100.0), (gsi4.Count, gsi4.P50Us, gsi4.P90Us, gsi4.P99Us, gsi4.MaxUs));
        var gsi8 = Assert.Single(s.ByGsi, l => l.Key == "8");
        Assert.Equal((3, 20.0, 30.0, 30.0, 30.0), (gsi8.Count, gsi8.P50Us, gsi8.P90Us, gsi8.P99Us, gsi8.MaxUs));
        var v40 = Assert.Single(s.ByVector, l => l.Key == "0x40");
        Assert.Equal(gsi4 with { Key = "0x40" }, v40);
        Assert.Equal([("uart-0", "write", 7L), ("pit", "write", 5L), ("uart-0", "read", 3L)],
            s.Talkers.Select(t => (t.Device, t.Direction, t.Accesses)));

        var stdout = new MemoryStream();
        Assert.Equal(0, ActorvisorCli.Run(["trace", "summarize", path], stdout, new StringWriter()));
        var table = Encoding.UTF8.GetString(stdout.ToArray());
        Assert.Matches(@"\n4\s+100\s+50\.0\s+90\.0\s+99\.0\s+100\.0", table);
        Assert.Matches(@"\n0x38\s+3\s+20\.0\s+30\.0\s+30\.0\s+30\.0", table);
        Assert.Matches(@"\nuart-0\s+write\s+7\n", table);
    }

    [Fact]
    public void ARunWithTraceFileWritesOneSpanPerLineThatSummarizeReads()
    {
        var kernel = GuestImages.WriteTemp(TelemetryGuest.Kernel(), ".elf");
        var file = Path.Combine(_dir, "run.jsonl");
        try
        {
            var stderr = new StringWriter();
            var exit = ActorvisorCli.Run(["run", "--kernel", kernel, "-m", "16M", "--name", "tele-file", "--trace", "irq.uart*,io.uart*,vm.lifecycle",
                "--trace-file", file], new MemoryStream(), stderr);
            Assert.True(exit == 2, stderr.ToString()); // halted with interrupts off
        }
        finally
        {
            File.Delete(kernel);
        }
        var lines = File.ReadAllLines(file);
        var spans = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.All(spans, s => Assert.Equal(1, s.GetProperty("v").GetInt32()));
        Assert.Equal(TelemetryGuest.UartWrites + TelemetryGuest.UartReads, spans.Count(s => s.GetProperty("name").GetString()!.StartsWith("io.")));
        var names = spans.Where(s => s.GetProperty("name").GetString()!.StartsWith("irq")).Select(s => s.GetProperty("name").GetString()).ToHashSet();
        Assert.Superset(new HashSet<string?> { "irq", "irq.raise", "irq.route", "irq.accept", "irq.inject", "irq.eoi" }, names);
        Assert.Contains(spans, s => s.GetProperty("name").GetString() == "vm.lifecycle" &&
                                    s.GetProperty("attributes").GetProperty("vm.state.to").GetString() == "running");

        var summary = TraceSummary.Read(file);
        Assert.Equal(lines.Length, summary.Spans);
        Assert.Equal(TelemetryGuest.UartWrites, Assert.Single(summary.Talkers, t => t is { Device: "uart-0", Direction: "write" }).Accesses);
        Assert.Equal(TelemetryGuest.UartReads, Assert.Single(summary.Talkers, t => t is { Device: "uart-0", Direction: "read" }).Accesses);
        var gsi4 = Assert.Single(summary.ByGsi);
        Assert.Equal(("4", 1), (gsi4.Key, gsi4.Count));
        Assert.True(gsi4.MaxUs > 0);
        Assert.Equal("0x40", Assert.Single(summary.ByVector).Key);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
