namespace Actorvisor.Host;

/// <summary>The `--stats` line: guest instructions, wall time, their rate, the vCPUs' waits for device reads, the process's peak
/// RSS, the time from the process's start to the first vCPU's start (the time to the first guest instruction), and the
/// blocks translated to .NET code with the share of instructions they ran.</summary>
public static class RunStatistics
{
    public static string Format(Actorvisor.Actors.Cpu.VcpuTotals totals, TimeSpan wall)
    {
        var instructions = totals.Instructions;
        var mips = wall.TotalSeconds > 0 ? instructions / wall.TotalSeconds / 1e6 : 0;
        var rss = PeakRssBytes() is { } bytes ? $"{bytes / (1024.0 * 1024):F0} MiB" : "unknown";
        var reads = totals.DeviceReads;
        var perRead = reads > 0 ? totals.DeviceReadWait.TotalMicroseconds / reads : 0;
        return $"actorvisor: stats: {instructions:N0} guest instructions in {wall.TotalSeconds:F2} s ({mips:F1} MIPS); " +
               $"{reads:N0} device reads waited {totals.DeviceReadWait.TotalSeconds:F2} s ({perRead:F0} µs each); peak RSS {rss}" +
               (FirstInstructionAfterStart(totals) is { } first ? $"; first instruction {first.TotalMilliseconds:F0} ms after process start" : "") +
               $"; {Actorvisor.Kernel.Cpu.SoftwareCpu.BlocksCompiledInProcess:N0} blocks compiled" +
               (instructions > 0 ? $", which ran {100.0 * totals.CompiledInstructions / instructions:F0}% of the instructions" : "");
    }

    /// <summary>From the process's start (the kernel's record of it) to the first vCPU start; null if none started.</summary>
    public static TimeSpan? FirstInstructionAfterStart(Actorvisor.Actors.Cpu.VcpuTotals totals)
    {
        if (totals.FirstStart is not { } first) return null;
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return first - self.StartTime.ToUniversalTime();
    }

    /// <summary>VmHWM from /proc/self/status (Linux); null elsewhere.</summary>
    public static long? PeakRssBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
