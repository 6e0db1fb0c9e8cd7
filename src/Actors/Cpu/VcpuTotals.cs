namespace Actorvisor.Actors.Cpu;

/// <summary>What a VM's vCPUs did in total, added by each vCPU actor when its run thread has stopped (for a run's statistics).</summary>
public sealed class VcpuTotals
{
    private long _instructions, _deviceReads, _deviceReadWaitTicks;

    public long Instructions => Interlocked.Read(ref _instructions);
    /// <summary>Reads a device actor answered, and the vCPUs' total wait for the answers.</summary>
    public long DeviceReads => Interlocked.Read(ref _deviceReads);
    public TimeSpan DeviceReadWait => System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _deviceReadWaitTicks));

    public void AddInstructions(long count) => Interlocked.Add(ref _instructions, count);

    private long _compiledInstructions;

    /// <summary>Of <see cref="Instructions"/>, those run by compiled blocks rather than the interpreter.</summary>
    public long CompiledInstructions => Interlocked.Read(ref _compiledInstructions);

    public void AddCompiledInstructions(long count) => Interlocked.Add(ref _compiledInstructions, count);

    private long _firstStartUnixTicks;

    /// <summary>When the first vCPU was told to start executing guest code (UTC), or null before that.</summary>
    public DateTime? FirstStart => Interlocked.Read(ref _firstStartUnixTicks) is var t and not 0 ? new DateTime(t, DateTimeKind.Utc) : null;

    /// <summary>Notes the first vCPU start (the time to the first guest instruction); later calls keep the first.</summary>
    public void MarkStarted() => Interlocked.CompareExchange(ref _firstStartUnixTicks, DateTime.UtcNow.Ticks, 0);

    public void AddDeviceReads(long count, long waitTicks)
    {
        Interlocked.Add(ref _deviceReads, count);
        Interlocked.Add(ref _deviceReadWaitTicks, waitTicks);
    }
}
