using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Cpu.Instructions;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// The model reports IA32_ARCH_CAPABILITIES so that Linux keeps page-table isolation and MDS buffer clearing
/// off (arch/x86/kernel/cpu/common.c reads RDCL_NO and MDS_NO from it): a software CPU has no speculation.
/// </summary>
public class ArchCapabilitiesTests
{
    [Fact]
    public void Leaf7AdvertisesTheMsr()
    {
        var h = new CpuHarness(StartMode.Long64);
        var (_, _, _, edx) = CpuidInstruction.Query(h.Cpu, 7, 0);
        Assert.NotEqual(0u, edx & CpuidBits.ArchCapabilities);
        var (_, _, _, edx1) = CpuidInstruction.Query(h.Cpu, 7, 1);
        Assert.Equal(0u, edx1); // only sub-leaf 0 exists
    }

    [Fact]
    public void RdmsrReportsImmunityAndWrmsrFaults()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => { a.mov(ecx, MsrIndex.ArchCapabilities); a.rdmsr(); a.wrmsr(); });
        h.Step(2);
        var value = (h[Gpr.RDX] << 32) | h[Gpr.RAX];
        Assert.NotEqual(0UL, value & ArchCapabilityBits.RdclNo);  // no Meltdown: no PTI
        Assert.NotEqual(0UL, value & ArchCapabilityBits.MdsNo);   // no MDS: no VERW on exit
        Assert.NotEqual(0UL, value & ArchCapabilityBits.TaaNo);
        Assert.Equal(Vectors.GP, h.Fault().Vector);              // read-only MSR
    }

    [Fact]
    public void AModelWithoutItHasNoMsr()
    {
        var h = new CpuHarness(StartMode.Long64, CpuModel.Default with { Leaf7Edx = 0 });
        h.Load(a => { a.mov(ecx, MsrIndex.ArchCapabilities); a.rdmsr(); });
        h.Step();
        Assert.Equal(Vectors.GP, h.Fault().Vector);
    }
}
