namespace Actorvisor.Actors.Cpu;

/// <summary>What a VM's vCPUs did in total, added by each vCPU actor when its run thread has stopped (for a run's statistics).</summary>
public sealed class VcpuTotals
{
    private long _instructions;

    public long Instructions => Interlocked.Read(ref _instructions);

    public void AddInstructions(long count) => Interlocked.Add(ref _instructions, count);
}
