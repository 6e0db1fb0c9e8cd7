namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// The fixed CPU model our engine presents: identity, address widths, clocks and feature flags. CPUID
/// (Instructions/CpuidInstruction.cs) answers only from here, and the instructions that a feature gates
/// (CR4 bits, LAHF in 64-bit mode, RDTSCP, 1 GiB pages, NX) consult the same flags, so the guest is told
/// exactly what is implemented. To advertise a feature, change its bit below in one place.
///
/// The model is an Intel family-6 part whose package/core/thread layout is the VM's <see cref="Topology"/>
/// (CPUID leaves 1, 4 and 0xB and the APIC IDs follow it) and a constant, invariant TSC whose frequency is
/// stated in CPUID 0x15/0x16 so a guest never has to calibrate it against the PIT or HPET.
/// </summary>
public sealed record CpuModel
{
    public string Vendor { get; init; } = "GenuineIntel";
    public string BrandString { get; init; } = "Actorvisor software x86-64 CPU";
    /// <summary>Hypervisor signature at CPUID 0x40000000 (12 bytes, NUL padded).</summary>
    public string HypervisorSignature { get; init; } = "Actorvisor";
    /// <summary>EDX after RESET and CPUID.1:EAX: family/model/stepping (SDM Vol. 3A, 10.1.4).</summary>
    public uint Signature { get; init; } = 0x000306A9; // family 6, model 0x3A, stepping 9
    public ulong ResetEdx => Signature;
    /// <summary>Microcode revision reported in IA32_BIOS_SIGN_ID[63:32].</summary>
    public uint MicrocodeRevision { get; init; } = 1;
    public int PhysicalAddressBits { get; init; } = 40;
    public int LinearAddressBits { get; init; } = 48;
    /// <summary>Nominal TSC frequency told to the guest (CPUID 0x15/0x16).</summary>
    public ulong TscHz { get; init; } = 1_000_000_000;
    /// <summary>LAPIC bus/timer frequency before division; reported as the crystal clock in CPUID 0x15.</summary>
    public ulong BusHz { get; init; } = 100_000_000;
    /// <summary>The VM's sockets, cores and threads: one model is shared by all vCPUs of a VM.</summary>
    public CpuTopology Topology { get; init; } = CpuTopology.Single;

    /// <summary>CPUID.1:EDX (SDM Vol. 2A, Table 3-11). x86-64 Linux requires FPU..SSE2.</summary>
    public uint Leaf1Edx { get; init; } =
        CpuidBits.Fpu | CpuidBits.De | CpuidBits.Pse | CpuidBits.Tsc | CpuidBits.Msr | CpuidBits.Pae |
        CpuidBits.Cx8 | CpuidBits.Apic | CpuidBits.Sep | CpuidBits.Mtrr | CpuidBits.Pge | CpuidBits.Cmov |
        CpuidBits.Pat | CpuidBits.Pse36 | CpuidBits.Clfsh | CpuidBits.Mmx | CpuidBits.Fxsr | CpuidBits.Sse |
        CpuidBits.Sse2;

    /// <summary>CPUID.1:ECX (SDM Vol. 2A, Table 3-10): only "running under a hypervisor".</summary>
    public uint Leaf1Ecx { get; init; } = CpuidBits.Hypervisor;

    /// <summary>CPUID.80000001:EDX: SYSCALL, NX, 1 GiB pages, RDTSCP, long mode.</summary>
    public uint Ext1Edx { get; init; } =
        CpuidBits.Syscall | CpuidBits.Nx | CpuidBits.Page1G | CpuidBits.Rdtscp | CpuidBits.LongMode;

    /// <summary>CPUID.80000001:ECX: LAHF/SAHF in 64-bit mode.</summary>
    public uint Ext1Ecx { get; init; } = CpuidBits.LahfLm;

    /// <summary>CPUID.6:EAX: the LAPIC timer keeps running in every C-state (ARAT).</summary>
    public uint Leaf6Eax { get; init; } = CpuidBits.Arat;

    /// <summary>CPUID.80000007:EDX: the TSC runs at a constant rate in every state (invariant TSC).</summary>
    public uint Ext7Edx { get; init; } = CpuidBits.InvariantTsc;

    /// <summary>
    /// CPUID.(7,0):EBX: IA32_TSC_ADJUST. With the invariant TSC, it is what Linux (5.17+) takes as proof the
    /// TSC cannot be tampered with unseen, so it trusts it without the clocksource watchdog; ours derives from
    /// one host clock for every vCPU and cannot drift, and a lost timer tick must not disqualify it.
    /// </summary>
    public uint Leaf7Ebx { get; init; } = CpuidBits.TscAdjust;

    /// <summary>CPUID.(7,0):EDX: only IA32_ARCH_CAPABILITIES.</summary>
    public uint Leaf7Edx { get; init; } = CpuidBits.ArchCapabilities;

    /// <summary>
    /// IA32_ARCH_CAPABILITIES: a software CPU executes nothing speculatively, so it is immune to Meltdown, MDS,
    /// TAA, SSB, the MMIO stale-data family, PBRSB, GDS and RFDS, and says so. Linux then leaves page-table
    /// isolation and buffer clearing off, which would otherwise cost a CR3 switch and a VERW on every kernel
    /// entry and exit.
    /// </summary>
    public ulong ArchCapabilities { get; init; } =
        ArchCapabilityBits.RdclNo | ArchCapabilityBits.SsbNo | ArchCapabilityBits.MdsNo | ArchCapabilityBits.IfPschangeMcNo |
        ArchCapabilityBits.TaaNo | ArchCapabilityBits.SbdrSsdpNo | ArchCapabilityBits.FbsdpNo | ArchCapabilityBits.PsdpNo |
        ArchCapabilityBits.PbrsbNo | ArchCapabilityBits.GdsNo | ArchCapabilityBits.RfdsNo;

    public bool HasArchCapabilities => (Leaf7Edx & CpuidBits.ArchCapabilities) != 0;

    public bool Has1GPages => (Ext1Edx & CpuidBits.Page1G) != 0;
    public bool HasNx => (Ext1Edx & CpuidBits.Nx) != 0;
    public bool HasRdtscp => (Ext1Edx & CpuidBits.Rdtscp) != 0;
    public bool HasLahfLm => (Ext1Ecx & CpuidBits.LahfLm) != 0;
    public bool HasSyscall => (Ext1Edx & CpuidBits.Syscall) != 0;
    public bool HasLongMode => (Ext1Edx & CpuidBits.LongMode) != 0;
    public bool HasSep => (Leaf1Edx & CpuidBits.Sep) != 0;
    public bool HasPse36 => (Leaf1Edx & CpuidBits.Pse36) != 0;

    /// <summary>The CR4 bits this model implements (a MOV to CR4 setting any other bit raises #GP).</summary>
    public ulong Cr4Allowed
    {
        get
        {
            var a = Cr4.TSD | Cr4.PCE;
            if ((Leaf1Edx & CpuidBits.Vme) != 0) a |= Cr4.VME | Cr4.PVI;
            if ((Leaf1Edx & CpuidBits.De) != 0) a |= Cr4.DE;
            if ((Leaf1Edx & CpuidBits.Pse) != 0) a |= Cr4.PSE;
            if ((Leaf1Edx & CpuidBits.Pae) != 0) a |= Cr4.PAE;
            if ((Leaf1Edx & CpuidBits.Mce) != 0) a |= Cr4.MCE;
            if ((Leaf1Edx & CpuidBits.Pge) != 0) a |= Cr4.PGE;
            if ((Leaf1Edx & CpuidBits.Fxsr) != 0) a |= Cr4.OSFXSR;
            if ((Leaf1Edx & CpuidBits.Sse) != 0) a |= Cr4.OSXMMEXCPT;
            return a & Cr4.Supported;
        }
    }

    /// <summary>EFER bits software may set on this model.</summary>
    public ulong EferAllowed =>
        (HasSyscall ? Efer.SCE : 0) | (HasLongMode ? Efer.LME : 0) | (HasNx ? Efer.NXE : 0);

    public static readonly CpuModel Default = new();
}

/// <summary>CPUID feature bits by name (SDM Vol. 2A, CPUID).</summary>
public static class CpuidBits
{
    // CPUID.1:EDX
    public const uint Fpu = 1u << 0, Vme = 1u << 1, De = 1u << 2, Pse = 1u << 3, Tsc = 1u << 4, Msr = 1u << 5;
    public const uint Pae = 1u << 6, Mce = 1u << 7, Cx8 = 1u << 8, Apic = 1u << 9, Sep = 1u << 11, Mtrr = 1u << 12;
    public const uint Pge = 1u << 13, Mca = 1u << 14, Cmov = 1u << 15, Pat = 1u << 16, Pse36 = 1u << 17;
    public const uint Clfsh = 1u << 19, Mmx = 1u << 23, Fxsr = 1u << 24, Sse = 1u << 25, Sse2 = 1u << 26;
    public const uint Htt = 1u << 28;
    // CPUID.1:ECX
    public const uint Sse3 = 1u << 0, Monitor = 1u << 3, Cx16 = 1u << 13, X2Apic = 1u << 21, Movbe = 1u << 22;
    public const uint Popcnt = 1u << 23, TscDeadline = 1u << 24, Xsave = 1u << 26, OsXsave = 1u << 27;
    public const uint Hypervisor = 1u << 31;
    // CPUID.6:EAX
    public const uint Arat = 1u << 2;
    // CPUID.80000001:EDX / ECX
    public const uint Syscall = 1u << 11, Nx = 1u << 20, Page1G = 1u << 26, Rdtscp = 1u << 27, LongMode = 1u << 29;
    public const uint LahfLm = 1u << 0;
    // CPUID.80000007:EDX
    public const uint InvariantTsc = 1u << 8;
    /// <summary>CPUID.(7,0):EBX.</summary>
    public const uint TscAdjust = 1u << 1;
    // CPUID.(7,0):EDX
    public const uint ArchCapabilities = 1u << 29;
}

/// <summary>IA32_ARCH_CAPABILITIES bits (MSR 0x10A): speculative-execution issues the processor is not subject to.</summary>
public static class ArchCapabilityBits
{
    public const ulong RdclNo = 1UL << 0, SsbNo = 1UL << 4, MdsNo = 1UL << 5, IfPschangeMcNo = 1UL << 6, TaaNo = 1UL << 8;
    public const ulong SbdrSsdpNo = 1UL << 13, FbsdpNo = 1UL << 14, PsdpNo = 1UL << 15, PbrsbNo = 1UL << 24;
    public const ulong GdsNo = 1UL << 26, RfdsNo = 1UL << 27;
}
