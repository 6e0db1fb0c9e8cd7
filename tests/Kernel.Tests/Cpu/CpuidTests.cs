using System.Text;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Cpu.Instructions;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>CPUID leaves against the SDM's definitions and the CPU model.</summary>
public class CpuidTests
{
    private static (uint Eax, uint Ebx, uint Ecx, uint Edx) Q(uint leaf, uint sub = 0, CpuModel? model = null, int id = 0)
    {
        var mem = new global::Actorvisor.Kernel.Memory.GuestMemory(1 << 20);
        var cpu = new SoftwareCpu(id, mem, new TestPlatform(), model);
        return CpuidInstruction.Query(cpu, leaf, sub);
    }

    private static string Ascii(params uint[] regs)
    {
        var b = new byte[regs.Length * 4];
        for (var i = 0; i < regs.Length; i++) BitConverter.GetBytes(regs[i]).CopyTo(b, i * 4);
        return Encoding.ASCII.GetString(b).TrimEnd('\0');
    }

    [Fact]
    public void LeafZeroGivesVendorAndMaxLeaf()
    {
        var (a, b, c, d) = Q(0);
        Assert.Equal(0x16u, a);
        Assert.Equal("GenuineIntel", Ascii(b, d, c));
    }

    [Fact]
    public void LeafOneAdvertisesWhatX8664LinuxRequires()
    {
        var (a, b, c, d) = Q(1, id: 3);
        Assert.Equal(CpuModel.Default.Signature, a);
        Assert.Equal(6u, (a >> 8) & 0xF); // family 6
        foreach (var bit in new[] { CpuidBits.Fpu, CpuidBits.Tsc, CpuidBits.Msr, CpuidBits.Pae, CpuidBits.Cx8, CpuidBits.Apic,
                     CpuidBits.Sep, CpuidBits.Mtrr, CpuidBits.Pge, CpuidBits.Cmov, CpuidBits.Pat, CpuidBits.Pse36,
                     CpuidBits.Clfsh, CpuidBits.Mmx, CpuidBits.Fxsr, CpuidBits.Sse, CpuidBits.Sse2, CpuidBits.Pse })
            Assert.NotEqual(0u, d & bit);
        // Not implemented, so not advertised.
        Assert.Equal(0u, d & (CpuidBits.Vme | CpuidBits.Mce | CpuidBits.Mca | CpuidBits.Htt));
        Assert.Equal(CpuidBits.Hypervisor, c); // no SSE3, MONITOR, CX16, x2APIC, MOVBE, POPCNT, XSAVE
        Assert.Equal(8u, (b >> 8) & 0xFF);      // CLFLUSH line: 8 quadwords = 64 bytes
        Assert.Equal(1u, (b >> 16) & 0xFF);     // one logical processor
        Assert.Equal(3u, b >> 24);              // initial APIC ID = vCPU id
    }

    [Fact]
    public void HypervisorLeavesCarrySignatureAndTiming()
    {
        var (a, b, c, d) = Q(0x4000_0000);
        Assert.Equal(0x4000_0010u, a);
        Assert.Equal("Actorvisor", Ascii(b, c, d));
        var t = Q(0x4000_0010);
        Assert.Equal((uint)(CpuModel.Default.TscHz / 1000), t.Eax);
        Assert.Equal((uint)(CpuModel.Default.BusHz / 1000), t.Ebx);
        // Other hypervisor bases (Xen probes 0x40000100...) hold nothing.
        Assert.Equal((0u, 0u, 0u, 0u), Q(0x4000_0100));
    }

    /// <summary>Linux's native_calibrate_tsc: TSC = ECX × EBX / EAX; the crystal (ECX) drives the LAPIC timer.</summary>
    [Theory]
    [InlineData(1_000_000_000UL, 100_000_000UL)]
    [InlineData(2_400_000_000UL, 24_000_000UL)]
    [InlineData(2_112_000_000UL, 19_200_000UL)]
    [InlineData(3_000_000_007UL, 25_000_000UL)]
    public void Leaf15StatesTheTscFrequencyExactly(ulong tscHz, ulong busHz)
    {
        var m = CpuModel.Default with { TscHz = tscHz, BusHz = busHz };
        var (den, num, crystal, _) = Q(0x15, model: m);
        Assert.NotEqual(0u, den);
        Assert.NotEqual(0u, num);
        Assert.Equal(busHz, crystal);
        Assert.Equal(tscHz, (ulong)crystal * num / den);
        Assert.Equal(0UL, (ulong)crystal * num % den);
        var l16 = Q(0x16, model: m);
        Assert.Equal((uint)(tscHz / 1_000_000), l16.Eax);
        Assert.Equal((uint)(busHz / 1_000_000), l16.Ecx);
    }

    [Fact]
    public void ExtendedLeavesAdvertiseLongModeFeaturesAndBrand()
    {
        Assert.Equal(0x8000_0008u, Q(0x8000_0000).Eax);
        var (_, _, c, d) = Q(0x8000_0001);
        foreach (var bit in new[] { CpuidBits.LongMode, CpuidBits.Nx, CpuidBits.Syscall, CpuidBits.Rdtscp, CpuidBits.Page1G })
            Assert.NotEqual(0u, d & bit);
        Assert.NotEqual(0u, c & CpuidBits.LahfLm);
        var b2 = Q(0x8000_0002); var b3 = Q(0x8000_0003); var b4 = Q(0x8000_0004);
        var brand = Ascii(b2.Eax, b2.Ebx, b2.Ecx, b2.Edx, b3.Eax, b3.Ebx, b3.Ecx, b3.Edx, b4.Eax, b4.Ebx, b4.Ecx, b4.Edx);
        Assert.Equal(CpuModel.Default.BrandString, brand);
        var a8 = Q(0x8000_0008).Eax;
        Assert.Equal(40u, a8 & 0xFF);
        Assert.Equal(48u, (a8 >> 8) & 0xFF);
        Assert.NotEqual(0u, Q(0x8000_0007).Edx & CpuidBits.InvariantTsc);
        Assert.NotEqual(0u, Q(6).Eax & CpuidBits.Arat);
    }

    [Fact]
    public void LeavesBeyondTheMaximaReturnTheHighestBasicLeaf()
    {
        var top = Q(0x16);
        Assert.Equal(top, Q(0x17));
        Assert.Equal(top, Q(0x8000_0009));
        Assert.Equal(top, Q(0x2000_0000));
    }

    [Fact]
    public void CacheAndTopologyLeavesDescribeOneThreadPerPackage()
    {
        Assert.Equal(0xFFu, (Q(2).Eax >> 8) & 0xFF); // "use leaf 4"
        var l1d = Q(4, 0);
        Assert.Equal(1u, l1d.Eax & 0x1F);
        Assert.Equal(1u, (l1d.Eax >> 5) & 7);
        var size = (((l1d.Ebx >> 22) & 0x3FF) + 1) * (((l1d.Ebx >> 12) & 0x3FF) + 1) * ((l1d.Ebx & 0xFFF) + 1) * (l1d.Ecx + 1);
        Assert.Equal(32u * 1024, size);
        Assert.Equal(0u, l1d.Eax >> 14);            // one thread and one core share it
        Assert.Equal(0u, Q(4, 4).Eax & 0x1F);       // no fifth cache
        var smt = Q(0xB, 0, id: 2);
        Assert.Equal((0u, 1u, 0x100u, 2u), smt);
        var core = Q(0xB, 1, id: 2);
        Assert.Equal(2u, (core.Ecx >> 8) & 0xFF);
        Assert.Equal(0u, Q(0xB, 2).Ebx);            // no further levels
        Assert.Equal((0u, CpuidBits.TscAdjust, 0u, CpuidBits.ArchCapabilities), Q(7)); // no structured features but TSC_ADJUST and IA32_ARCH_CAPABILITIES
    }

    [Fact]
    public void GuestCpuidClearsUpperRegisterHalvesAndUsesEcxAsSubleaf()
    {
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            a.mov(rax, 0xFFFF_FFFF_0000_0004UL);
            a.mov(rcx, 0xFFFF_FFFF_0000_0002UL);
            a.mov(rbx, ulong.MaxValue);
            a.mov(rdx, ulong.MaxValue);
            a.cpuid();
            a.hlt();
        });
        var expected = CpuidInstruction.Query(r.Cpu, 4, 2);
        Assert.Equal(expected.Eax, r.Rax);
        Assert.Equal(expected.Ebx, r.Reg(Gpr.RBX));
        Assert.Equal(expected.Ecx, r.Reg(Gpr.RCX));
        Assert.Equal(expected.Edx, r.Reg(Gpr.RDX));
        Assert.Equal(2u, (expected.Eax >> 5) & 7); // L2
    }

    /// <summary>The classic CPUID-presence test: EFLAGS.ID can be toggled by POPFD.</summary>
    [Fact]
    public void EflagsIdBitIsWritableSoGuestsFindCpuid()
    {
        var r = GuestRunner.Run(StartMode.Protected32, a =>
        {
            a.pushfd();
            a.pop(eax);
            a.mov(ecx, eax);
            a.xor(eax, 0x20_0000);
            a.push(eax);
            a.popfd();
            a.pushfd();
            a.pop(eax);
            a.xor(eax, ecx);
            a.hlt();
        });
        Assert.Equal(0x20_0000UL, r.Rax);
    }

    [Fact]
    public void FeatureListIsTheOnePlaceToChange()
    {
        var m = CpuModel.Default with { Leaf1Edx = CpuModel.Default.Leaf1Edx & ~CpuidBits.Pge, Ext1Edx = CpuModel.Default.Ext1Edx & ~CpuidBits.Page1G };
        Assert.Equal(0u, Q(1, model: m).Edx & CpuidBits.Pge);
        Assert.Equal(0UL, m.Cr4Allowed & Cr4.PGE);
        Assert.False(m.Has1GPages);
        Assert.Equal(0u, Q(0x8000_0001, model: m).Edx & CpuidBits.Page1G);
    }
}
