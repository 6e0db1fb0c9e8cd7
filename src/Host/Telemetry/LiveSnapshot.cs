using System.Globalization;
using System.Text.Json.Nodes;
using Actorvisor.Kernel.Telemetry;

namespace Actorvisor.Host.Telemetry;

/// <summary>
/// One VM's counters at one moment as the control verb <c>telemetry</c> sends them (docs/control-protocol.md)
/// and <c>actorvisor top</c> reads them: cumulative counts since the process started, and the VM's monotonic
/// clock (<see cref="Seconds"/>) so two snapshots give rates (<see cref="LiveRates.Between"/>).
/// Interrupts raised are keyed by the line the device drives: an ISA device's IRQ (the PIT's 0, which the
/// IOAPIC sees on pin 2), a PCI/IOAPIC GSI, or -1 for MSIs.
/// </summary>
public sealed record LiveSnapshot(
    string Vm,
    double Seconds,
    IReadOnlyDictionary<string, long> ExitsByReason,
    IReadOnlyDictionary<(string Device, string Direction), long> Accesses,
    IReadOnlyDictionary<int, long> RaisedByGsi,
    IReadOnlyDictionary<int, long> InjectedByVector,
    IReadOnlyList<LiveSnapshot.Vcpu> Vcpus,
    IReadOnlyDictionary<string, int> Mailboxes)
{
    /// <param name="State">running, halted, wait-for-sipi, paused (the run thread's own word otherwise).</param>
    public sealed record Vcpu(int Id, string State, double RunSeconds, double HaltSeconds, long Exits, long Instructions);

    /// <summary>The counters of <paramref name="vm"/> now, with each vCPU's state and instruction count from its thread.</summary>
    public static LiveSnapshot Take(string vm, double seconds, IReadOnlyDictionary<int, (string State, long Instructions)> cpus,
        IReadOnlyList<(string Actor, int Depth)> mailboxes)
    {
        var t = TelemetrySnapshot.Take(vm);
        var vcpus = new List<Vcpu>();
        foreach (var (id, (state, instructions)) in cpus.OrderBy(c => c.Key))
        {
            var times = t.Vcpus.FirstOrDefault(v => v.Vcpu == id);
            vcpus.Add(new Vcpu(id, state, times?.RunSeconds ?? 0, times?.HaltSeconds ?? 0, times?.Exits ?? 0, instructions));
        }
        var boxes = new Dictionary<string, int>();
        foreach (var (actor, depth) in mailboxes) boxes[actor] = boxes.GetValueOrDefault(actor) + depth;
        return new LiveSnapshot(vm, seconds, t.ExitsByReason, t.Accesses, t.RaisedByGsi, t.InjectedByVector, vcpus, boxes);
    }

    public JsonObject ToJson()
    {
        var exits = new JsonObject();
        foreach (var (k, v) in ExitsByReason.OrderBy(e => e.Key, StringComparer.Ordinal)) exits[k] = v;
        var accesses = new JsonArray();
        foreach (var ((device, direction), n) in Accesses.OrderBy(a => a.Key.Device, StringComparer.Ordinal).ThenBy(a => a.Key.Direction, StringComparer.Ordinal))
            accesses.Add(new JsonObject { ["device"] = device, ["direction"] = direction, ["count"] = n });
        var raised = new JsonObject();
        foreach (var (gsi, n) in RaisedByGsi.OrderBy(g => g.Key)) raised[gsi < 0 ? "msi" : gsi.ToString(CultureInfo.InvariantCulture)] = n;
        var injected = new JsonObject();
        foreach (var (vector, n) in InjectedByVector.OrderBy(v => v.Key)) injected[vector.ToString(CultureInfo.InvariantCulture)] = n;
        var vcpus = new JsonArray();
        foreach (var v in Vcpus)
            vcpus.Add(new JsonObject
            {
                ["cpu"] = v.Id, ["state"] = v.State, ["run_s"] = v.RunSeconds, ["halt_s"] = v.HaltSeconds, ["exits"] = v.Exits,
                ["instructions"] = v.Instructions,
            });
        var mailboxes = new JsonObject();
        foreach (var (actor, depth) in Mailboxes.OrderBy(m => m.Key, StringComparer.Ordinal)) mailboxes[actor] = depth;
        return new JsonObject
        {
            ["vm"] = Vm, ["seconds"] = Seconds, ["exits"] = exits, ["accesses"] = accesses, ["interrupts_raised"] = raised,
            ["interrupts_injected"] = injected, ["vcpus"] = vcpus, ["mailboxes"] = mailboxes,
        };
    }

    /// <summary>Reads what <see cref="ToJson"/> wrote; a missing or malformed field throws <see cref="FormatException"/>.</summary>
    public static LiveSnapshot FromJson(JsonObject o)
    {
        try
        {
            var exits = Obj(o, "exits").ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<long>());
            var accesses = new Dictionary<(string, string), long>();
            foreach (var a in Arr(o, "accesses").OfType<JsonObject>())
                accesses[(a["device"]!.GetValue<string>(), a["direction"]!.GetValue<string>())] = a["count"]!.GetValue<long>();
            var raised = Obj(o, "interrupts_raised").ToDictionary(kv => kv.Key == "msi" ? -1 : int.Parse(kv.Key, CultureInfo.InvariantCulture),
                kv => kv.Value!.GetValue<long>());
            var injected = Obj(o, "interrupts_injected").ToDictionary(kv => int.Parse(kv.Key, CultureInfo.InvariantCulture), kv => kv.Value!.GetValue<long>());
            var vcpus = Arr(o, "vcpus").OfType<JsonObject>().Select(v => new Vcpu(v["cpu"]!.GetValue<int>(), v["state"]!.GetValue<string>(),
                v["run_s"]!.GetValue<double>(), v["halt_s"]!.GetValue<double>(), v["exits"]!.GetValue<long>(), v["instructions"]!.GetValue<long>())).ToList();
            var mailboxes = Obj(o, "mailboxes").ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<int>());
            return new LiveSnapshot(o["vm"]!.GetValue<string>(), o["seconds"]!.GetValue<double>(), exits, accesses, raised, injected, vcpus, mailboxes);
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or OverflowException or ArgumentException)
        {
            throw new FormatException($"not a telemetry snapshot: {e.Message}", e);
        }
    }

    private static JsonObject Obj(JsonObject o, string key) => o[key] as JsonObject ?? throw new FormatException($"\"{key}\" must be an object");
    private static JsonArray Arr(JsonObject o, string key) => o[key] as JsonArray ?? throw new FormatException($"\"{key}\" must be an array");
}

/// <summary>
/// Per-second rates between two snapshots of the same VM: each count's difference over the time between them.
/// A count that went down (a new process under the same name) is taken from zero; one that only the later
/// snapshot has, too. Rows are sorted busiest first.
/// </summary>
public sealed record LiveRates(
    string Vm,
    double Interval,
    IReadOnlyList<(string Reason, double PerSecond)> Exits,
    IReadOnlyList<(int Gsi, double PerSecond)> Raised,
    IReadOnlyList<(int Vector, double PerSecond)> Injected,
    IReadOnlyList<(string Device, double Reads, double Writes)> Devices,
    IReadOnlyList<LiveRates.VcpuRates> Vcpus,
    IReadOnlyDictionary<string, int> Mailboxes)
{
    /// <param name="RunShare">Share of the interval running guest code (0..1); <paramref name="HaltShare"/> parked in HLT.</param>
    public sealed record VcpuRates(int Id, string State, double RunShare, double HaltShare, double ExitsPerSecond, double InstructionsPerSecond);

    public double TotalExits => Exits.Sum(e => e.PerSecond);

    public static LiveRates Between(LiveSnapshot earlier, LiveSnapshot later)
    {
        var dt = later.Seconds - earlier.Seconds;
        if (!(dt > 0)) throw new ArgumentException($"the later snapshot must be later ({earlier.Seconds} s, then {later.Seconds} s)");
        double Rate(long before, long after) => (after >= before ? after - before : after) / dt;
        static long Get<TKey>(IReadOnlyDictionary<TKey, long> d, TKey k) where TKey : notnull => d.TryGetValue(k, out var v) ? v : 0;

        var exits = later.ExitsByReason.Select(kv => (kv.Key, Rate(Get(earlier.ExitsByReason, kv.Key), kv.Value)))
            .OrderByDescending(e => e.Item2).ThenBy(e => e.Key, StringComparer.Ordinal).ToList();
        var raised = later.RaisedByGsi.Select(kv => (kv.Key, Rate(Get(earlier.RaisedByGsi, kv.Key), kv.Value)))
            .OrderByDescending(e => e.Item2).ThenBy(e => e.Key).ToList();
        var injected = later.InjectedByVector.Select(kv => (kv.Key, Rate(Get(earlier.InjectedByVector, kv.Key), kv.Value)))
            .OrderByDescending(e => e.Item2).ThenBy(e => e.Key).ToList();
        var devices = later.Accesses.Keys.Select(k => k.Device).Distinct()
            .Select(d => (d, Rate(Get(earlier.Accesses, (d, "read")), Get(later.Accesses, (d, "read"))),
                Rate(Get(earlier.Accesses, (d, "write")), Get(later.Accesses, (d, "write")))))
            .OrderByDescending(d => d.Item2 + d.Item3).ThenBy(d => d.d, StringComparer.Ordinal).ToList();
        var vcpus = later.Vcpus.Select(v =>
        {
            var e = earlier.Vcpus.FirstOrDefault(x => x.Id == v.Id);
            double Share(double before, double after) => Math.Clamp((after >= before ? after - before : after) / dt, 0, 1);
            return new VcpuRates(v.Id, v.State, Share(e?.RunSeconds ?? 0, v.RunSeconds), Share(e?.HaltSeconds ?? 0, v.HaltSeconds),
                Rate(e?.Exits ?? 0, v.Exits), Rate(e?.Instructions ?? 0, v.Instructions));
        }).ToList();
        return new LiveRates(later.Vm, dt, exits, raised, injected, devices, vcpus, later.Mailboxes);
    }
}
