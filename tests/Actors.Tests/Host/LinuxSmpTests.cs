using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Linux on four vCPUs given as bhyve's `-c cpus=4,sockets=2,cores=2` (the boot of <see cref="LinuxClockFixture"/>):
/// the BSP starts the APs with INIT-SIPI-SIPI and sees the topology the MADT and CPUID describe.
/// </summary>
[Collection(GuestBoot.Collection)]
public class LinuxSmpTests(LinuxClockFixture boot, ITestOutputHelper output)
{
    private string Value(string key)
    {
        Skip.If(boot.SkipReason is not null, boot.SkipReason);
        var line = boot.Lines.FirstOrDefault(l => l.Line.StartsWith(key + ":", StringComparison.Ordinal)).Line;
        Assert.True(line is not null, $"no {key} line on the console");
        output.WriteLine(line);
        return line![(key.Length + 1)..].Trim();
    }

    [SkippableFact]
    public void AllFourVcpusComeUp()
    {
        Assert.Equal("4", Value("NPROC"));
        Assert.Contains("smp: Brought up 1 node, 4 CPUs", boot.Console);
    }

    [SkippableFact]
    public void ProcCpuinfoShowsTwoSocketsOfTwoCores()
    {
        Assert.Equal("2", Value("SOCKETS"));
        Assert.Equal("2", Value("CORES"));
        Assert.Equal("2", Value("SIBLINGS")); // no SMT: one thread per core
    }
}
