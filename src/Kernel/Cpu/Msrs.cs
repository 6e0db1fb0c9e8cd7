namespace Actorvisor.Kernel.Cpu;

/// <summary>MSR numbers we implement (SDM Vol. 4).</summary>
public static class MsrIndex
{
    public const uint Tsc = 0x10, ApicBase = 0x1B, MiscEnable = 0x1A0, Pat = 0x277;
    public const uint SysenterCs = 0x174, SysenterEsp = 0x175, SysenterEip = 0x176;
    public const uint Efer = 0xC000_0080, Star = 0xC000_0081, Lstar = 0xC000_0082, Cstar = 0xC000_0083, Fmask = 0xC000_0084;
    public const uint FsBase = 0xC000_0100, GsBase = 0xC000_0101, KernelGsBase = 0xC000_0102, TscAux = 0xC000_0103;
}

public sealed partial class SoftwareCpu
{
    /// <summary>IA32_APIC_BASE: BSP flag for CPU 0, enabled, at 0xFEE00000.</summary>
    public ulong ApicBase;
    public ulong KernelGsBase, Star, Lstar, Cstar, Fmask, SysenterCs, SysenterEsp, SysenterEip, TscAux;
    public ulong Pat = 0x0007_0406_0007_0406UL;
    /// <summary>Added to the raw clock to form the TSC (WRMSR to IA32_TSC sets it).</summary>
    public long TscOffset;

    private void ResetMsrs()
    {
        ApicBase = 0xFEE0_0000UL | (1UL << 11) | (Id == 0 ? 1UL << 8 : 0);
        KernelGsBase = Star = Lstar = Cstar = Fmask = SysenterCs = SysenterEsp = SysenterEip = TscAux = 0;
        Pat = 0x0007_0406_0007_0406UL;
        TscOffset = 0;
    }

    /// <summary>The time-stamp counter: the instruction count in deterministic mode, host time otherwise.</summary>
    public ulong ReadTsc()
    {
        long raw = Deterministic
            ? InstructionCount
            : (long)(System.Diagnostics.Stopwatch.GetTimestamp() * ((double)Model.TscHz / System.Diagnostics.Stopwatch.Frequency));
        return (ulong)(raw + TscOffset);
    }
}
