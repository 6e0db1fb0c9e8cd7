namespace Actorvisor.Kernel.Telemetry;

/// <summary>
/// One VM's counters at one moment, for a live view (<c>actorvisor top</c> through the control socket): the
/// caller takes two snapshots and divides the differences by the time between them. Counts are cumulative
/// since the process started (a VM rebuilt on reboot under the same name adds to the same counts).
/// </summary>
public sealed record TelemetrySnapshot(
    string Vm,
    DateTime TakenUtc,
    IReadOnlyDictionary<string, long> ExitsByReason,
    IReadOnlyDictionary<(string Device, string Direction), long> Accesses,
    IReadOnlyDictionary<int, long> InjectedByVector,
    IReadOnlyDictionary<int, long> RaisedByGsi,
    IReadOnlyList<TelemetrySnapshot.VcpuTimes> Vcpus)
{
    public sealed record VcpuTimes(int Vcpu, double RunSeconds, double HaltSeconds, long Exits);

    public static TelemetrySnapshot Take(string vm)
    {
        var exits = new Dictionary<string, long>();
        var accesses = new Dictionary<(string, string), long>();
        var vectors = new Dictionary<int, long>();
        var vcpus = new Dictionary<int, (long Run, long Halt, long Exits)>();
        foreach (var v in VmMeters.All.Where(v => v.Vm == vm))
        {
            long total = 0;
            for (var r = 0; r < VcpuMetrics.ExitReasonCount; r++)
            {
                var n = v.Exits[r];
                total += n;
                if (n != 0) exits[VmMeters.ExitName((ExitReason)r)] = exits.GetValueOrDefault(VmMeters.ExitName((ExitReason)r)) + n;
            }
            foreach (var d in v.Devices)
            {
                if (d.Reads != 0) accesses[(d.Device, "read")] = accesses.GetValueOrDefault((d.Device, "read")) + d.Reads;
                if (d.Writes != 0) accesses[(d.Device, "write")] = accesses.GetValueOrDefault((d.Device, "write")) + d.Writes;
            }
            for (var i = 0; i < 256; i++)
                if (v.Vectors[i] != 0) vectors[i] = vectors.GetValueOrDefault(i) + v.Vectors[i];
            var (run, halt, ex) = vcpus.GetValueOrDefault(v.Vcpu);
            vcpus[v.Vcpu] = (run + v.RunTicks, halt + v.HaltTicks, ex + total);
        }
        return new TelemetrySnapshot(vm, DateTime.UtcNow, exits, accesses, vectors, InterruptCounts.Raised(vm),
            vcpus.OrderBy(k => k.Key).Select(k => new VcpuTimes(k.Key, VcpuMetrics.Seconds(k.Value.Run), VcpuMetrics.Seconds(k.Value.Halt), k.Value.Exits)).ToList());
    }
}

/// <summary>Raised lines per VM and GSI (index 256: MSIs), counted by the devices' interrupt outputs.</summary>
public static class InterruptCounts
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, long[]> ByVm = new();

    /// <summary>The counters of <paramref name="vm"/>: a device keeps the array and increments its slot.</summary>
    public static long[] For(string vm) => ByVm.GetOrAdd(vm, _ => new long[257]);

    public static IReadOnlyDictionary<int, long> Raised(string vm)
    {
        var result = new Dictionary<int, long>();
        if (!ByVm.TryGetValue(vm, out var counts)) return result;
        for (var i = 0; i < counts.Length; i++)
        {
            var n = Interlocked.Read(ref counts[i]);
            if (n != 0) result[i == 256 ? -1 : i] = n;
        }
        return result;
    }
}
