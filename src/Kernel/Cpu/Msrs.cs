namespace Actorvisor.Kernel.Cpu;

/// <summary>MSR numbers we implement (SDM Vol. 4, chapter 2).</summary>
public static class MsrIndex
{
    public const uint Tsc = 0x10, ApicBase = 0x1B, FeatureControl = 0x3A, TscAdjust = 0x3B, ArchCapabilities = 0x10A;
    public const uint BiosSignId = 0x8B, MtrrCap = 0xFE, MiscEnable = 0x1A0, DebugCtl = 0x1D9, Pat = 0x277;
    public const uint SysenterCs = 0x174, SysenterEsp = 0x175, SysenterEip = 0x176;
    /// <summary>IA32_MTRR_PHYSBASE0; PHYSMASKn = base + 2n + 1.</summary>
    public const uint MtrrPhysBase0 = 0x200;
    public const uint MtrrFix64K00000 = 0x250, MtrrFix16K80000 = 0x258, MtrrFix16KA0000 = 0x259;
    public const uint MtrrFix4KC0000 = 0x268, MtrrFix4KF8000 = 0x26F, MtrrDefType = 0x2FF;
    public const uint Efer = 0xC000_0080, Star = 0xC000_0081, Lstar = 0xC000_0082, Cstar = 0xC000_0083, Fmask = 0xC000_0084;
    public const uint FsBase = 0xC000_0100, GsBase = 0xC000_0101, KernelGsBase = 0xC000_0102, TscAux = 0xC000_0103;
}

public static class ApicBaseBits
{
    public const ulong Bsp = 1 << 8, X2Apic = 1 << 10, Enable = 1 << 11;
    public const ulong DefaultBase = 0xFEE0_0000;
}

public static class MiscEnableBits
{
    public const ulong FastStrings = 1 << 0, BtsUnavailable = 1 << 11, PebsUnavailable = 1 << 12;
    public const ulong LimitCpuidMaxval = 1 << 22, XdDisable = 1UL << 34;
    /// <summary>Bits that read as 1 whatever is written (we have no BTS or PEBS).</summary>
    public const ulong ReadOnlyOnes = BtsUnavailable | PebsUnavailable;
    /// <summary>Bits a guest may change: fast strings and the CPUID limit (others keep their reset value).</summary>
    public const ulong Writable = FastStrings | LimitCpuidMaxval;
    public const ulong PowerOn = FastStrings | ReadOnlyOnes;
}

/// <summary>
/// Model-specific registers: RDMSR/WRMSR semantics by index (SDM Vol. 4 and the sections each MSR cites).
/// The MTRRs are read-as-written storage in <see cref="MsrStore"/> (we have no caches, so memory types do
/// not change behaviour, but their values are validated as the hardware does). Any other index is #GP(0),
/// as bhyve does, so a guest probing with rdmsr_safe sees a clean "not there".
/// </summary>
public sealed partial class SoftwareCpu
{
    /// <summary>IA32_APIC_BASE: BSP flag for CPU 0, enabled, at 0xFEE00000. The LAPIC reads it from here.</summary>
    public ulong ApicBase;
    public ulong KernelGsBase, Star, Lstar, Cstar, Fmask, SysenterCs, SysenterEsp, SysenterEip, TscAux;
    public ulong Pat = PatPowerOn;
    public ulong MiscEnable = MiscEnableBits.PowerOn;
    /// <summary>Added to the raw clock to form the TSC (WRMSR to IA32_TSC sets it).</summary>
    public long TscOffset;
    /// <summary>IA32_TSC_ADJUST: the sum of every change software made to the TSC (SDM Vol. 3B, 18.17.3).</summary>
    public long TscAdjust;

    public const ulong PatPowerOn = 0x0007_0406_0007_0406UL;
    /// <summary>IA32_MTRRCAP: 8 variable ranges, fixed ranges, write-combining; no SMRR.</summary>
    public const ulong MtrrCapValue = 8 | (1 << 8) | (1 << 10);
    public const int VariableMtrrs = 8;

    private void ResetMsrs()
    {
        ApicBase = ApicBaseBits.DefaultBase | ApicBaseBits.Enable | (Id == 0 ? ApicBaseBits.Bsp : 0);
        KernelGsBase = Star = Lstar = Cstar = Fmask = SysenterCs = SysenterEsp = SysenterEip = TscAux = 0;
        Pat = PatPowerOn;
        MiscEnable = MiscEnableBits.PowerOn;
        TscOffset = 0;
        TscAdjust = 0;
        // Reset calls this; the PAE PDPTE registers (Paging.cs) are the other per-CPU state it must clear.
        ResetPdptes();
    }

    /// <summary>The raw clock under the TSC: <see cref="TscClock"/> when set (the deterministic schedule's time,
    /// shared by all vCPUs), this CPU's instruction count in <see cref="Deterministic"/> mode, host time otherwise.</summary>
    private long RawTsc()
    {
        if (TscClock is { } clock)
            return (long)((UInt128)(ulong)clock.GetTimestamp() * Model.TscHz / (ulong)clock.TimestampFrequency);
        if (Deterministic) return InstructionCount;
        var ticks = System.Diagnostics.Stopwatch.GetTimestamp();
        var freq = System.Diagnostics.Stopwatch.Frequency;
        // Exact integer scaling (a double loses ticks once the product passes 2^53).
        return (ulong)freq == Model.TscHz ? ticks : (long)((UInt128)(ulong)ticks * Model.TscHz / (ulong)freq);
    }

    /// <summary>The time-stamp counter.</summary>
    public ulong ReadTsc() => (ulong)(RawTsc() + TscOffset);

    /// <summary>Sets the TSC to a value (WRMSR IA32_TSC, snapshot restore).</summary>
    public void WriteTsc(ulong value)
    {
        // A write to IA32_TSC moves IA32_TSC_ADJUST by the same amount (SDM Vol. 3B, 18.17.3).
        var delta = (long)value - (long)ReadTsc();
        TscOffset += delta;
        TscAdjust += delta;
    }

    /// <summary>RDMSR semantics; #GP(0) for an MSR this model does not have.</summary>
    public ulong ReadMsr(uint index)
    {
        switch (index)
        {
            case MsrIndex.Tsc: return ReadTsc();
            case MsrIndex.TscAdjust: return (ulong)TscAdjust;
            case MsrIndex.ApicBase: return ApicBase;
            case MsrIndex.FeatureControl: return 1; // lock bit set, every enable bit 0: no VMX or SMX to turn on
            case MsrIndex.BiosSignId: return (ulong)Model.MicrocodeRevision << 32;
            case MsrIndex.MtrrCap: return MtrrCapValue;
            case MsrIndex.MiscEnable: return MiscEnable;
            case MsrIndex.Pat: return Pat;
            case MsrIndex.SysenterCs: return SysenterCs;
            case MsrIndex.SysenterEsp: return SysenterEsp;
            case MsrIndex.SysenterEip: return SysenterEip;
            case MsrIndex.Efer: return EferValue;
            case MsrIndex.Star: return Star;
            case MsrIndex.Lstar: return Lstar;
            case MsrIndex.Cstar: return Cstar;
            case MsrIndex.Fmask: return Fmask;
            case MsrIndex.FsBase: return Segs[Seg.FS].Base;
            case MsrIndex.GsBase: return Segs[Seg.GS].Base;
            case MsrIndex.KernelGsBase: return KernelGsBase;
            case MsrIndex.TscAux: return TscAux;
            case MsrIndex.DebugCtl: return 0;
            case MsrIndex.ArchCapabilities when Model.HasArchCapabilities: return Model.ArchCapabilities;
        }
        if (IsMtrr(index)) return MsrStore.GetValueOrDefault(index);
        throw CpuFault.General(0);
    }

    /// <summary>WRMSR semantics, with the reserved-bit and canonical checks that raise #GP(0).</summary>
    public void WriteMsr(uint index, ulong value)
    {
        // IA32_APIC_BASE (and any MSR a LAPIC model may read) can change what the interrupt source answers.
        NoteInterruptChange();
        switch (index)
        {
            case MsrIndex.Tsc:
                WriteTsc(value);
                return;
            case MsrIndex.TscAdjust:
                // Adds the change of IA32_TSC_ADJUST to the TSC itself.
                TscOffset += (long)value - TscAdjust;
                TscAdjust = (long)value;
                return;
            case MsrIndex.ApicBase:
            {
                // Bits 7:0, 9 and those above MAXPHYADDR are reserved; x2APIC is not implemented; BSP is read-only.
                var reserved = 0xFFUL | (1UL << 9) | ApicBaseBits.X2Apic | AbovePhysMask;
                if ((value & reserved) != 0) throw CpuFault.General(0);
                ApicBase = (value & ~ApicBaseBits.Bsp) | (ApicBase & ApicBaseBits.Bsp);
                return;
            }
            case MsrIndex.BiosSignId:
                return; // writing 0 before CPUID to sample the microcode revision: nothing to store
            case MsrIndex.MiscEnable:
                MiscEnable = (MiscEnable & ~MiscEnableBits.Writable) | (value & MiscEnableBits.Writable) | MiscEnableBits.ReadOnlyOnes;
                return;
            case MsrIndex.Pat:
                for (var b = 0; b < 8; b++)
                    if (!IsPatType((byte)(value >> (8 * b)))) throw CpuFault.General(0);
                Pat = value;
                return;
            case MsrIndex.SysenterCs:
                SysenterCs = value;
                return;
            case MsrIndex.SysenterEsp:
                SysenterEsp = CanonicalOrFault(value);
                return;
            case MsrIndex.SysenterEip:
                SysenterEip = CanonicalOrFault(value);
                return;
            case MsrIndex.Efer:
                WriteEfer(value);
                return;
            case MsrIndex.Star:
                Star = value;
                return;
            case MsrIndex.Lstar:
                Lstar = CanonicalOrFault(value);
                return;
            case MsrIndex.Cstar:
                Cstar = CanonicalOrFault(value);
                return;
            case MsrIndex.Fmask:
                // Only RFLAGS[31:0] can be masked; the upper half is reserved.
                if ((value >> 32) != 0) throw CpuFault.General(0);
                Fmask = value;
                return;
            case MsrIndex.FsBase:
                Segs[Seg.FS].Base = CanonicalOrFault(value);
                return;
            case MsrIndex.GsBase:
                Segs[Seg.GS].Base = CanonicalOrFault(value);
                return;
            case MsrIndex.KernelGsBase:
                KernelGsBase = CanonicalOrFault(value);
                return;
            case MsrIndex.TscAux:
                if ((value >> 32) != 0) throw CpuFault.General(0);
                TscAux = value;
                return;
            case MsrIndex.DebugCtl:
                // No LBR, BTF or BTS: only 0 is accepted.
                if (value != 0) throw CpuFault.General(0);
                return;
        }
        if (IsMtrr(index))
        {
            if (!MtrrValueValid(index, value)) throw CpuFault.General(0);
            MsrStore[index] = value;
            return;
        }
        // IA32_FEATURE_CONTROL is locked, IA32_MTRRCAP is read-only, the rest do not exist.
        throw CpuFault.General(0);
    }

    /// <summary>
    /// IA32_EFER (SDM Vol. 3A, 2.2.1 and 9.8.5): SCE, LME and NXE as the model allows; LMA is read-only
    /// (written by CR0.PG); LME cannot change while paging is on.
    /// </summary>
    private void WriteEfer(ulong value)
    {
        if ((value & ~(Model.EferAllowed | Efer.LMA)) != 0) throw CpuFault.General(0);
        if (PagingEnabled && ((value ^ EferValue) & Efer.LME) != 0) throw CpuFault.General(0);
        var old = EferValue;
        EferValue = (value & Model.EferAllowed) | (EferValue & Efer.LMA);
        // NXE changes what a cached translation allows.
        if (((old ^ EferValue) & Efer.NXE) != 0) FlushTlb(includeGlobal: true);
        EndBlock = true;
    }

    /// <summary>Physical-address bits above MAXPHYADDR, up to bit 63.</summary>
    internal ulong AbovePhysMask => ~((1UL << Model.PhysicalAddressBits) - 1);

    private static ulong CanonicalOrFault(ulong value) => IsCanonical(value) ? value : throw CpuFault.General(0);

    private static bool IsMtrr(uint index) =>
        index is MsrIndex.MtrrDefType or MsrIndex.MtrrFix64K00000 or MsrIndex.MtrrFix16K80000 or MsrIndex.MtrrFix16KA0000 ||
        index is >= MsrIndex.MtrrFix4KC0000 and <= MsrIndex.MtrrFix4KF8000 ||
        index >= MsrIndex.MtrrPhysBase0 && index < MsrIndex.MtrrPhysBase0 + 2 * VariableMtrrs;

    /// <summary>Memory types valid in MTRRs: UC, WC, WT, WP, WB (SDM Vol. 3A, 12.11.1).</summary>
    private static bool IsMtrrType(ulong t) => t is 0 or 1 or 4 or 5 or 6;

    /// <summary>PAT entries add UC- (7) to the MTRR types (SDM Vol. 3A, 12.12.2).</summary>
    private static bool IsPatType(byte t) => t is 0 or 1 or 4 or 5 or 6 or 7;

    private bool MtrrValueValid(uint index, ulong value)
    {
        if (index == MsrIndex.MtrrDefType)
        {
            // Type in 7:0, FE bit 10, E bit 11; the rest is reserved.
            return (value & ~0xCFFUL) == 0 && IsMtrrType(value & 0xFF);
        }
        if (index >= MsrIndex.MtrrPhysBase0 && index < MsrIndex.MtrrPhysBase0 + 2 * VariableMtrrs)
        {
            var isMask = ((index - MsrIndex.MtrrPhysBase0) & 1) != 0;
            // PHYSBASE: type 7:0, bits 11:8 reserved; PHYSMASK: bits 10:0 reserved, V in bit 11.
            return isMask
                ? (value & (0x7FFUL | AbovePhysMask)) == 0
                : (value & (0xF00UL | AbovePhysMask)) == 0 && IsMtrrType(value & 0xFF);
        }
        // Fixed-range MTRRs: eight type bytes.
        for (var b = 0; b < 8; b++)
            if (!IsMtrrType((value >> (8 * b)) & 0xFF)) return false;
        return true;
    }
}
