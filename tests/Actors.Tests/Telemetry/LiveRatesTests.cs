using System.Text.Json.Nodes;
using Actorvisor.Host.Telemetry;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>`actorvisor top`'s arithmetic: rates from two snapshots, and the snapshot's wire form.</summary>
public class LiveRatesTests
{
    private static LiveSnapshot Snapshot(double seconds, long pio, long timerIrqs, long vector30, long uartReads, long uartWrites,
        double run, double halt, long instructions, long vcpuExits) =>
        new("demo", seconds,
            new Dictionary<string, long> { ["pio"] = pio, ["halt"] = timerIrqs },
            new Dictionary<(string, string), long> { [("uart-0", "read")] = uartReads, [("uart-0", "write")] = uartWrites },
            new Dictionary<int, long> { [0] = timerIrqs, [-1] = 7 },
            new Dictionary<int, long> { [0x30] = vector30 },
            [new LiveSnapshot.Vcpu(0, "halted", run, halt, vcpuExits, instructions)],
            new Dictionary<string, int> { ["uart-0"] = 3 });

    [Fact]
    public void RatesAreTheDifferencesOverTheTimeBetween()
    {
        var a = Snapshot(100.0, pio: 1_000, timerIrqs: 50, vector30: 40, uartReads: 10, uartWrites: 20, run: 1.0, halt: 3.0, instructions: 5_000, vcpuExits: 1_100);
        var b = Snapshot(102.0, pio: 3_000, timerIrqs: 250, vector30: 240, uartReads: 110, uartWrites: 420, run: 1.5, halt: 4.5, instructions: 9_000, vcpuExits: 3_300);
        var r = LiveRates.Between(a, b);

        Assert.Equal(2.0, r.Interval);
        Assert.Equal(new[] { ("pio", 1000.0), ("halt", 100.0) }, r.Exits.ToArray());            // busiest first
        Assert.Equal(1100.0, r.TotalExits);
        Assert.Equal(new[] { (0, 100.0), (-1, 0.0) }, r.Raised.ToArray());
        Assert.Equal(new[] { (0x30, 100.0) }, r.Injected.ToArray());
        Assert.Equal(new[] { ("uart-0", 50.0, 200.0) }, r.Devices.ToArray());
        var v = Assert.Single(r.Vcpus);
        Assert.Equal(0.25, v.RunShare, 9);
        Assert.Equal(0.75, v.HaltShare, 9);
        Assert.Equal(1100.0, v.ExitsPerSecond);
        Assert.Equal(2000.0, v.InstructionsPerSecond);
        Assert.Equal("halted", v.State);
        Assert.Equal(3, r.Mailboxes["uart-0"]);
    }

    [Fact]
    public void ACountOnlyTheLaterSnapshotHasOrThatWentDownCountsFromZero()
    {
        var a = Snapshot(10, pio: 5_000, timerIrqs: 0, vector30: 0, uartReads: 0, uartWrites: 0, run: 0, halt: 0, instructions: 0, vcpuExits: 0);
        var b = new LiveSnapshot("demo", 11, new Dictionary<string, long> { ["pio"] = 300, ["mmio"] = 40 },
            new Dictionary<(string, string), long> { [("hpet", "read")] = 9 }, new Dictionary<int, long>(), new Dictionary<int, long>(),
            [new LiveSnapshot.Vcpu(1, "running", 0.5, 0, 3, 10)], new Dictionary<string, int>());
        var r = LiveRates.Between(a, b);
        Assert.Equal(new[] { ("pio", 300.0), ("mmio", 40.0) }, r.Exits.ToArray()); // the process restarted: 300 since then
        Assert.Equal(new[] { ("hpet", 9.0, 0.0) }, r.Devices.ToArray());
        Assert.Equal(0.5, Assert.Single(r.Vcpus).RunShare);
    }

    [Fact]
    public void TheEarlierSnapshotMustBeEarlier()
    {
        var a = Snapshot(10, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        Assert.Throws<ArgumentException>(() => LiveRates.Between(a, a));
    }

    [Fact]
    public void TheWireFormRoundTrips()
    {
        var a = Snapshot(12.5, pio: 1, timerIrqs: 2, vector30: 3, uartReads: 4, uartWrites: 5, run: 0.25, halt: 0.5, instructions: 6, vcpuExits: 7);
        var json = a.ToJson();
        Assert.Equal(2, json["interrupts_raised"]!["0"]!.GetValue<long>());
        Assert.Equal(7, json["interrupts_raised"]!["msi"]!.GetValue<long>());
        Assert.Equal(3, json["interrupts_injected"]!["48"]!.GetValue<long>());
        var back = LiveSnapshot.FromJson(JsonNode.Parse(json.ToJsonString())!.AsObject());
        Assert.Equal(a.ExitsByReason, back.ExitsByReason);
        Assert.Equal(a.Accesses, back.Accesses);
        Assert.Equal(a.RaisedByGsi, back.RaisedByGsi);
        Assert.Equal(a.InjectedByVector, back.InjectedByVector);
        Assert.Equal(a.Vcpus, back.Vcpus);
        Assert.Equal(a.Mailboxes, back.Mailboxes);
        Assert.Equal(12.5, back.Seconds);
        Assert.Throws<FormatException>(() => LiveSnapshot.FromJson(new JsonObject { ["vm"] = "x" }));
    }

    [Fact]
    public void ThePlainFormHasOneLinePerRowWithItsKind()
    {
        var a = Snapshot(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        var b = Snapshot(1, pio: 10, timerIrqs: 100, vector30: 99, uartReads: 1, uartWrites: 2, run: 0.1, halt: 0.9, instructions: 1000, vcpuExits: 110);
        var w = new StringWriter();
        TopCommand.WritePlain(LiveRates.Between(a, b), 10, w);
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("top vm=demo interval=1.00s exits/s=110.0", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("irq ") && l.Contains("gsi=0") && l.EndsWith("100.0/s"));
        Assert.Contains(lines, l => l.StartsWith("vector ") && l.Contains("0x30") && l.EndsWith("99.0/s"));
        Assert.Contains(lines, l => l.StartsWith("device ") && l.Contains("uart-0") && l.Contains("1.0/s read") && l.Contains("2.0/s write"));
        Assert.Contains(lines, l => l.StartsWith("vcpu ") && l.Contains("halted") && l.Contains("run  10.0%") && l.Contains("halt  90.0%"));
        Assert.Contains(lines, l => l.StartsWith("mailbox ") && l.Contains("uart-0") && l.TrimEnd().EndsWith(" 3"));
    }

    [Fact]
    public void TheTerminalFormHasATablePerKind()
    {
        var a = Snapshot(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        var b = Snapshot(1, pio: 10, timerIrqs: 100, vector30: 99, uartReads: 1, uartWrites: 2, run: 0.1, halt: 0.9, instructions: 1000, vcpuExits: 110);
        var w = new StringWriter();
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Ansi = Spectre.Console.AnsiSupport.No, ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
            Out = new Spectre.Console.AnsiConsoleOutput(w),
        });
        console.Profile.Width = 160;
        console.Write(TopCommand.Render(LiveRates.Between(a, b), 10));
        var text = w.ToString();
        foreach (var expected in new[] { "exits/s 110", "irqs raised", "irqs taken", "busiest devices", "vCPUs", "mailboxes",
                     "gsi=0", "0x30", "uart-0", "halted", "99.0", "1,000" })
            Assert.True(text.Contains(expected), $"no '{expected}' in:\n{text}");
    }
}
