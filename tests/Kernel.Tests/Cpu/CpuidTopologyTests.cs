using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Cpu.Instructions;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// CPUID leaves 1, 4 and 0xB per vCPU against the VM's topology (SDM Vol. 2A, CPUID; Vol. 3A, 10.4.5 "Identifying
/// Logical Processors in an MP System"): what a guest decodes from them must be the topology it was given.
/// </summary>
public class CpuidTopologyTests
{
    private static readonly GuestMemory Memory = new(1 << 20);

    private static SoftwareCpu Cpu(CpuTopology t, int id) =>
        new(id, Memory, new TestPlatform(), CpuModel.Default with { Topology = t });

    private static (uint Eax, uint Ebx, uint Ecx, uint Edx) Q(SoftwareCpu cpu, uint leaf, uint sub = 0) =>
        CpuidInstruction.Query(cpu, leaf, sub);

    [Fact]
    public void SparseTopologyLeavesForOneVcpu()
    {
        // 2 sockets × 3 cores × 2 threads; vCPU 7 is socket 1, core 0, thread 1: APIC ID (1<<3)|(0<<1)|1 = 9.
        var cpu = Cpu(new CpuTopology(12, 2, 3, 2), 7);
        Assert.Equal(9, cpu.ApicId);

        var l1 = Q(cpu, 1);
        Assert.Equal(9u, l1.Ebx >> 24);                  // initial APIC ID
        Assert.Equal(8u, (l1.Ebx >> 16) & 0xFF);         // addressable IDs per package: 2^(1+2)
        Assert.NotEqual(0u, l1.Edx & CpuidBits.Htt);     // that field is valid

        var l1d = Q(cpu, 4, 0);
        Assert.Equal(1u, (l1d.Eax >> 14) & 0xFFF);       // L1: the two threads of a core share it (2 IDs - 1)
        Assert.Equal(3u, l1d.Eax >> 26);                 // 2^2 addressable core IDs - 1
        var l3 = Q(cpu, 4, 3);
        Assert.Equal(3u, (l3.Eax >> 5) & 7);
        Assert.Equal(7u, (l3.Eax >> 14) & 0xFFF);        // L3: the whole package (8 IDs - 1)

        Assert.Equal((1u, 2u, 0x100u, 9u), Q(cpu, 0xB, 0)); // SMT: shift 1, 2 threads, level 0 type SMT, x2APIC ID
        Assert.Equal((3u, 6u, 0x201u, 9u), Q(cpu, 0xB, 1)); // core: shift 3, 6 logical processors, level 1 type core
        Assert.Equal((0u, 0u, 2u, 9u), Q(cpu, 0xB, 2));     // invalid level: type 0, EDX still the ID
    }

    [Theory]
    [InlineData("2")]
    [InlineData("cpus=8,sockets=2,cores=2,threads=2")]
    [InlineData("cpus=4,sockets=2,cores=3,maxcpus=6")]
    [InlineData("sockets=1,cores=5,threads=3")]
    public void GuestDecodesEachVcpusPlaceFromLeafB(string text)
    {
        var t = CpuTopology.Parse(text);
        var seen = new HashSet<uint>();
        for (var id = 0; id < t.Cpus; id++)
        {
            var cpu = Cpu(t, id);
            var smt = Q(cpu, 0xB, 0);
            var core = Q(cpu, 0xB, 1);
            var x2apic = smt.Edx;
            Assert.True(seen.Add(x2apic), $"APIC ID {x2apic} given twice");
            Assert.Equal(x2apic, Q(cpu, 1).Ebx >> 24);
            // As Linux's detect_extended_topology: thread, core and package IDs from the shifts.
            var smtShift = (int)(smt.Eax & 0x1F);
            var pkgShift = (int)(core.Eax & 0x1F);
            Assert.Equal((uint)t.ThreadOf(id), x2apic & ((1u << smtShift) - 1));
            Assert.Equal((uint)t.CoreOf(id), (x2apic >> smtShift) & ((1u << (pkgShift - smtShift)) - 1));
            Assert.Equal((uint)t.SocketOf(id), x2apic >> pkgShift);
            Assert.Equal((uint)t.Threads, smt.Ebx & 0xFFFF);
            Assert.Equal((uint)(t.Threads * t.Cores), core.Ebx & 0xFFFF);
            // Leaf 1's HTT: more than one logical processor per package.
            Assert.Equal(t.Threads * t.Cores > 1, (Q(cpu, 1).Edx & CpuidBits.Htt) != 0);
        }
    }

    [Fact]
    public void OneCpuPerSocketLooksLikeSeparatePackages()
    {
        var cpu = Cpu(CpuTopology.Parse("4"), 3);
        var l1 = Q(cpu, 1);
        Assert.Equal((3u, 1u), (l1.Ebx >> 24, (l1.Ebx >> 16) & 0xFF));
        Assert.Equal(0u, l1.Edx & CpuidBits.Htt);
        Assert.Equal(0u, Q(cpu, 4, 0).Eax >> 14);
        Assert.Equal((0u, 1u, 0x100u, 3u), Q(cpu, 0xB, 0));
        Assert.Equal((0u, 1u, 0x201u, 3u), Q(cpu, 0xB, 1));
    }
}
