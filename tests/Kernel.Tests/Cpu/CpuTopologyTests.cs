using Actorvisor.Kernel.Cpu;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>bhyve(8)'s <c>-c</c> syntax and the APIC IDs a topology gives (SDM Vol. 3A, 10.4.5; CPUID leaf 0xB).</summary>
public class CpuTopologyTests
{
    private static (int Cpus, int Sockets, int Cores, int Threads, int Max) Shape(string text)
    {
        var t = CpuTopology.Parse(text);
        return (t.Cpus, t.Sockets, t.Cores, t.Threads, t.MaxCpus);
    }

    [Theory]
    [InlineData("", 1, 1, 1, 1, 1)]                               // bhyve: -c "" is one vCPU
    [InlineData("4", 4, 4, 1, 1, 4)]                              // a bare count: one socket per CPU, as bhyve
    [InlineData("cpus=4", 4, 4, 1, 1, 4)]
    [InlineData("sockets=2,cores=2", 4, 2, 2, 1, 4)]              // the count follows from the product
    [InlineData("cpus=8,sockets=1,cores=4,threads=2", 8, 1, 4, 2, 8)]
    [InlineData("threads=2", 2, 1, 1, 2, 2)]
    [InlineData("2,cores=2", 2, 1, 2, 1, 2)]
    [InlineData("cpus=4,sockets=2,cores=3,maxcpus=6", 4, 2, 3, 1, 6)] // fewer present than the topology holds
    [InlineData("cpus=2,maxcpus=4", 2, 4, 1, 1, 4)]
    [InlineData(" cpus = 3 , SOCKETS=3 ", 3, 3, 1, 1, 3)]
    public void ParsesBhyveSyntax(string text, int cpus, int sockets, int cores, int threads, int max) =>
        Assert.Equal((cpus, sockets, cores, threads, max), Shape(text));

    [Theory]
    [InlineData("cpus=3,sockets=2", "must equal sockets*cores*threads")]  // bhyve's consistency rule
    [InlineData("4,cores=2,threads=4", "must equal sockets*cores*threads")]
    [InlineData("cpus=8,maxcpus=4", "more than maxcpus")]
    [InlineData("sockets=2,cores=2,maxcpus=6", "must equal maxcpus")]
    [InlineData("0", "between 1 and")]
    [InlineData("cpus=-1", "not a positive decimal number")]
    [InlineData("cpus=0x4", "not a positive decimal number")]
    [InlineData("cpus=four", "not a positive decimal number")]
    [InlineData("cores=", "not a positive decimal number")]
    [InlineData("dies=2", "unknown key 'dies'")]
    [InlineData("cpus=2,cpus=2", "given twice")]
    [InlineData("2,cpus=2", "given twice")]
    [InlineData("256", "between 1 and 255")]
    [InlineData("99999999999", "not a positive decimal number")]
    [InlineData("sockets=128,cores=2", "APIC IDs up to 255")]          // 255 is the xAPIC broadcast ID
    public void RejectsWithTheReason(string text, string reason)
    {
        var e = Assert.Throws<FormatException>(() => CpuTopology.Parse(text));
        Assert.Contains(reason, e.Message);
        Assert.StartsWith($"-c {text}:", e.Message);
        Assert.False(CpuTopology.TryParse(text, out var t, out var error));
        Assert.Null(t);
        Assert.Equal(e.Message, error);
    }

    [Fact]
    public void ApicIdsHaveAFieldPerLevelRoundedUpToAPowerOfTwo()
    {
        // 2 sockets × 3 cores × 2 threads: SMT field 1 bit, core field 2 bits, package at bit 3.
        var t = new CpuTopology(12, 2, 3, 2);
        Assert.Equal((1, 2, 3), (t.ThreadBits, t.CoreBits, t.PackageShift));
        Assert.Equal(new[] { 0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13 }, Enumerable.Range(0, 12).Select(t.ApicIdOf));
        Assert.Equal((1, 1, 1), (t.SocketOf(9), t.CoreOf(9), t.ThreadOf(9))); // APIC ID 11 = (1<<3)|(1<<1)|1
        // One thread per core, one core per socket: the APIC ID is the vCPU id.
        var flat = CpuTopology.Parse("5");
        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, Enumerable.Range(0, 5).Select(flat.ApicIdOf));
        Assert.Equal(0, flat.PackageShift);
        // 3 × 3 × 3: 2 bits per level, so the last of 27 CPUs is (2<<4)|(2<<2)|2 = 42; sparse IDs are accepted.
        Assert.Equal(42, CpuTopology.Parse("sockets=3,cores=3,threads=3").ApicIdOf(26));
    }

    [Fact]
    public void ConstructorChecksTheLevelsAndTheCount()
    {
        Assert.Throws<ArgumentException>(() => new CpuTopology(0, 1, 1, 1));
        Assert.Throws<ArgumentException>(() => new CpuTopology(5, 2, 2, 1));
        Assert.Throws<ArgumentException>(() => new CpuTopology(1, 1, 0, 1));
        Assert.Throws<ArgumentException>(() => new CpuTopology(1, 1, 1, 256));
        Assert.Equal(3, new CpuTopology(3, 2, 2, 1).Cpus);
    }

    [Theory]
    [InlineData("3")]
    [InlineData("cpus=8,sockets=1,cores=4,threads=2")]
    [InlineData("cpus=4,sockets=2,cores=3,maxcpus=6")]
    public void ToStringParsesBackToAnEqualTopology(string text)
    {
        var t = CpuTopology.Parse(text);
        Assert.Equal(t, CpuTopology.Parse(t.ToString()));
    }
}
