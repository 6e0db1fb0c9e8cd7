using System.Text;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// CPUID (SDM Vol. 2A): every answer comes from the CPU's <see cref="CpuModel"/>. Leaves inside the basic
/// range that the model does not define read as zero; leaves above the highest basic and extended leaf
/// return the highest basic leaf's data, as Intel processors do; the hypervisor range 0x40000000-0x4FFFFFFF
/// holds our signature and timing leaf and zeros elsewhere.
/// </summary>
internal static unsafe class CpuidInstruction
{
    public const uint MaxBasicLeaf = 0x16;
    public const uint MaxExtendedLeaf = 0x8000_0008;
    public const uint HypervisorBase = 0x4000_0000;
    /// <summary>The generic "timing information" leaf (TSC and bus frequency in kHz), as VMware defines it.</summary>
    public const uint HypervisorTimingLeaf = 0x4000_0010;

    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Cpuid, &Cpuid);
    }

    private static void Cpuid(SoftwareCpu cpu, in Instruction i)
    {
        var (a, b, c, d) = Query(cpu, (uint)cpu.Gprs[Gpr.RAX], (uint)cpu.Gprs[Gpr.RCX]);
        // 32-bit results: the upper halves of RAX..RDX are cleared in 64-bit mode.
        cpu.Gprs[Gpr.RAX] = a;
        cpu.Gprs[Gpr.RBX] = b;
        cpu.Gprs[Gpr.RCX] = c;
        cpu.Gprs[Gpr.RDX] = d;
    }

    /// <summary>The four registers CPUID returns for a leaf and sub-leaf.</summary>
    public static (uint Eax, uint Ebx, uint Ecx, uint Edx) Query(SoftwareCpu cpu, uint leaf, uint subleaf)
    {
        var m = cpu.Model;
        // IA32_MISC_ENABLE.LimitCPUIDMaxval makes leaf 0 report 2 (for old OSes); honour it.
        var maxBasic = (cpu.MiscEnable & MiscEnableBits.LimitCpuidMaxval) != 0 ? 2u : MaxBasicLeaf;
        if (leaf >= HypervisorBase && leaf < 0x5000_0000) return Hypervisor(m, leaf);
        if (leaf >= 0x8000_0000)
        {
            if (leaf > MaxExtendedLeaf) return Basic(cpu, maxBasic, 0, maxBasic);
            return Extended(m, leaf);
        }
        if (leaf > maxBasic) return Basic(cpu, maxBasic, 0, maxBasic);
        return Basic(cpu, leaf, subleaf, maxBasic);
    }

    private static (uint, uint, uint, uint) Basic(SoftwareCpu cpu, uint leaf, uint subleaf, uint maxBasic)
    {
        var m = cpu.Model;
        var apicId = (uint)cpu.ApicId;
        var topo = m.Topology;
        switch (leaf)
        {
            case 0:
            {
                var v = Encoding.ASCII.GetBytes(m.Vendor.PadRight(12)[..12]);
                return (maxBasic, Dword(v, 0), Dword(v, 8), Dword(v, 4));
            }
            case 1:
            {
                // EBX: CLFLUSH line size in 8-byte units, addressable logical processor IDs per package (the
                // package's APIC-ID field span, a power of two as hardware reports it), initial APIC ID. HTT says
                // that field is valid: set when a package holds more than one logical processor.
                var perPackage = topo.ThreadsPerPackage > 1 ? Math.Min(1u << topo.PackageShift, 255u) : 1u;
                var ebx = (8u << 8) | (perPackage << 16) | (apicId << 24);
                var edx = m.Leaf1Edx;
                if (topo.ThreadsPerPackage > 1) edx |= CpuidBits.Htt;
                // The APIC flag follows IA32_APIC_BASE's global enable (SDM Vol. 3A, 11.4.3).
                if ((cpu.ApicBase & ApicBaseBits.Enable) == 0) edx &= ~CpuidBits.Apic;
                return (m.Signature, ebx, m.Leaf1Ecx, edx);
            }
            case 2:
                // One iteration; descriptor 0xFF: "no cache descriptors here, use leaf 4".
                return (0x0000_FF01, 0, 0, 0);
            case 4:
                return CacheLeaf(subleaf, topo);
            case 6:
                return (m.Leaf6Eax, 0, 0, 0);
            case 7:
                // Sub-leaf 0: max sub-leaf 0; no structured extended features but IA32_ARCH_CAPABILITIES.
                return subleaf == 0 ? (0u, m.Leaf7Ebx, 0u, m.Leaf7Edx) : (0u, 0u, 0u, 0u);
            case 0xB:
                return Topology(subleaf, apicId, topo);
            case 0x15:
            {
                // TSC = crystal × EBX / EAX; the crystal is the LAPIC timer clock (Linux reads it so).
                ulong den = m.BusHz, num = m.TscHz, g = Gcd(num, den);
                den /= g; num /= g;
                // A ratio that does not fit in 32 bits is approximated (only for odd frequencies).
                while (num > uint.MaxValue || den > uint.MaxValue) { num >>= 1; den >>= 1; }
                return ((uint)Math.Max(den, 1), (uint)num, (uint)m.BusHz, 0);
            }
            case 0x16:
            {
                var mhz = (uint)(m.TscHz / 1_000_000);
                return (mhz, mhz, (uint)(m.BusHz / 1_000_000), 0);
            }
            default:
                return (0, 0, 0, 0);
        }
    }

    /// <summary>
    /// Leaf 4, deterministic cache parameters: L1d, L1i, L2, L3 as a plausible part. EAX[25:14] is the number of
    /// addressable logical-processor IDs sharing the cache minus one (L1 and L2 per core: the SMT field's span;
    /// L3 per package: the package's span); EAX[31:26] the addressable core IDs in the package minus one.
    /// </summary>
    private static (uint, uint, uint, uint) CacheLeaf(uint subleaf, CpuTopology topo)
    {
        (uint Type, uint Level, uint Ways, uint Sets)? c = subleaf switch
        {
            0 => (1, 1, 8, 64),     // L1 data, 32 KiB
            1 => (2, 1, 8, 64),     // L1 instruction, 32 KiB
            2 => (3, 2, 8, 512),    // L2 unified, 256 KiB
            3 => (3, 3, 16, 4096),  // L3 unified, 4 MiB
            _ => null,
        };
        if (c is not { } x) return (0, 0, 0, 0);
        const uint line = 64;
        var sharingBits = x.Level == 3 ? topo.PackageShift : topo.ThreadBits;
        var sharing = Math.Min((1u << sharingBits) - 1, 0xFFFu);
        var cores = Math.Min((1u << topo.CoreBits) - 1, 0x3Fu);
        var eax = x.Type | (x.Level << 5) | (1u << 8) | (sharing << 14) | (cores << 26); // self-initialising
        var ebx = (line - 1) | (0u << 12) | ((x.Ways - 1) << 22);
        return (eax, ebx, x.Sets - 1, 0);
    }

    /// <summary>
    /// Leaf 0xB, extended topology: sub-leaf 0 the SMT level, 1 the core level, then an invalid level. EAX[4:0] is
    /// the shift from an x2APIC ID to the next level's ID, EBX[15:0] the logical processors at this level (as
    /// configured, not as addressable), ECX[15:8] the level type (1 SMT, 2 core), EDX the x2APIC ID.
    /// </summary>
    private static (uint, uint, uint, uint) Topology(uint subleaf, uint apicId, CpuTopology topo) => subleaf switch
    {
        0 => ((uint)topo.ThreadBits, (uint)topo.Threads, (1u << 8) | 0, apicId),
        1 => ((uint)topo.PackageShift, (uint)topo.ThreadsPerPackage, (2u << 8) | 1, apicId),
        _ => (0, 0, subleaf & 0xFF, apicId), // invalid level
    };

    private static (uint, uint, uint, uint) Extended(CpuModel m, uint leaf)
    {
        switch (leaf)
        {
            case 0x8000_0000: return (MaxExtendedLeaf, 0, 0, 0);
            case 0x8000_0001: return (0, 0, m.Ext1Ecx, m.Ext1Edx);
            case 0x8000_0002:
            case 0x8000_0003:
            case 0x8000_0004:
            {
                var brand = new byte[48];
                var src = Encoding.ASCII.GetBytes(m.BrandString);
                Array.Copy(src, brand, Math.Min(src.Length, 47)); // NUL-terminated
                var o = (int)(leaf - 0x8000_0002) * 16;
                return (Dword(brand, o), Dword(brand, o + 4), Dword(brand, o + 8), Dword(brand, o + 12));
            }
            case 0x8000_0006:
                // L2: 256 KiB, 8-way (encoding 6), 64-byte lines.
                return (0, 0, (256u << 16) | (6u << 12) | 64, 0);
            case 0x8000_0007:
                return (0, 0, 0, m.Ext7Edx);
            case 0x8000_0008:
                return ((uint)m.PhysicalAddressBits | ((uint)m.LinearAddressBits << 8), 0, 0, 0);
            default:
                return (0, 0, 0, 0);
        }
    }

    private static (uint, uint, uint, uint) Hypervisor(CpuModel m, uint leaf)
    {
        if (leaf == HypervisorBase)
        {
            var sig = new byte[12];
            var src = Encoding.ASCII.GetBytes(m.HypervisorSignature);
            Array.Copy(src, sig, Math.Min(src.Length, 12));
            return (HypervisorTimingLeaf, Dword(sig, 0), Dword(sig, 4), Dword(sig, 8));
        }
        if (leaf == HypervisorTimingLeaf) return ((uint)(m.TscHz / 1000), (uint)(m.BusHz / 1000), 0, 0);
        return (0, 0, 0, 0);
    }

    private static uint Dword(byte[] b, int o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);

    private static ulong Gcd(ulong a, ulong b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a == 0 ? 1 : a;
    }
}
