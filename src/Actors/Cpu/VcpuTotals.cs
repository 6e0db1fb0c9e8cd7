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

    public void AddDeviceReads(long count, long waitTicks)
    {
        Interlocked.Add(ref _deviceReads, count);
        Interlocked.Add(ref _deviceReadWaitTicks, waitTicks);
    }
}
