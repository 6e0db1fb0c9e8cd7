using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>RDMSR/WRMSR (semantics per MSR in Msrs.cs) and the counter reads RDTSC, RDTSCP and RDPMC.</summary>
internal static unsafe class Msr
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Rdmsr, &Rdmsr);
        t.Set(Mnemonic.Wrmsr, &Wrmsr);
        t.Set(Mnemonic.Rdtsc, &Rdtsc);
        t.Set(Mnemonic.Rdtscp, &Rdtscp);
        t.Set(Mnemonic.Rdpmc, &Rdpmc);
    }

    private static void Rdmsr(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        var v = cpu.ReadMsr((uint)cpu.Gprs[Gpr.RCX]);
        cpu.Gprs[Gpr.RAX] = (uint)v;
        cpu.Gprs[Gpr.RDX] = v >> 32;
    }

    private static void Wrmsr(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        var v = ((ulong)(uint)cpu.Gprs[Gpr.RDX] << 32) | (uint)cpu.Gprs[Gpr.RAX];
        cpu.WriteMsr((uint)cpu.Gprs[Gpr.RCX], v);
        // MSRs change bases, modes and clocks that later instructions of the block may depend on.
        cpu.EndBlock = true;
    }

    /// <summary>CR4.TSD makes RDTSC/RDTSCP privileged outside real mode (SDM Vol. 2B, RDTSC).</summary>
    private static void CheckTsd(SoftwareCpu cpu)
    {
        if ((cpu.Cr4 & Cr4.TSD) != 0 && cpu.Cpl != 0 && cpu.ProtectedMode) throw CpuFault.General(0);
    }

    private static void Rdtsc(SoftwareCpu cpu, in Instruction i)
    {
        CheckTsd(cpu);
        var t = cpu.ReadTsc();
        cpu.Gprs[Gpr.RAX] = (uint)t;
        cpu.Gprs[Gpr.RDX] = t >> 32;
    }

    private static void Rdtscp(SoftwareCpu cpu, in Instruction i)
    {
        if (!cpu.Model.HasRdtscp) throw CpuFault.InvalidOpcode();
        CheckTsd(cpu);
        var t = cpu.ReadTsc();
        cpu.Gprs[Gpr.RAX] = (uint)t;
        cpu.Gprs[Gpr.RDX] = t >> 32;
        cpu.Gprs[Gpr.RCX] = (uint)cpu.TscAux;
    }

    /// <summary>
    /// RDPMC: the model has no performance counters (CPUID.0AH reports version 0), so every ECX names an
    /// invalid counter. That and the CR4.PCE/CPL check both raise #GP(0), whatever the state.
    /// </summary>
    private static void Rdpmc(SoftwareCpu cpu, in Instruction i)
    {
        throw CpuFault.General(0);
    }
}
