using System.Globalization;
using System.Numerics;

namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// The VM's processor topology: <see cref="Sockets"/> packages of <see cref="Cores"/> cores of
/// <see cref="Threads"/> logical processors, of which the first <see cref="Cpus"/> exist (vCPU ids 0..Cpus-1;
/// id 0 is the BSP). <see cref="MaxCpus"/> = sockets × cores × threads is the size of the topology.
///
/// APIC IDs are built as hardware builds them (SDM Vol. 3A, 10.4.5 / CPUID leaf 0xB): each level gets a bit
/// field wide enough for its count rounded up to a power of two, SMT in the low bits, then the core, then
/// the package. vCPU i is thread i mod T of core (i / T) mod C of package i / (T·C). So with 3 cores the
/// core field is 2 bits wide and APIC ID 3 does not exist; APIC IDs are not always dense.
/// </summary>
public sealed record CpuTopology
{
    /// <summary>APIC IDs are 8 bits in xAPIC mode and 0xFF is the broadcast address: the highest usable is 0xFE.</summary>
    public const int MaxApicId = 0xFE;
    /// <summary>Per-level limit: leaf 0xB reports counts in 16 bits, leaf 1 and leaf 4 in 8 and 6; 255 keeps all honest.</summary>
    public const int MaxPerLevel = 255;

    public int Cpus { get; }
    public int Sockets { get; }
    public int Cores { get; }
    public int Threads { get; }
    public int MaxCpus => Sockets * Cores * Threads;

    /// <summary>Width of the SMT field of an APIC ID (CPUID.(0xB,0):EAX[4:0]).</summary>
    public int ThreadBits => Bits(Threads);
    /// <summary>Width of the core field.</summary>
    public int CoreBits => Bits(Cores);
    /// <summary>Shift from an APIC ID to its package ID (CPUID.(0xB,1):EAX[4:0]).</summary>
    public int PackageShift => ThreadBits + CoreBits;
    /// <summary>Logical processors in one package.</summary>
    public int ThreadsPerPackage => Cores * Threads;

    /// <summary>One vCPU, one socket.</summary>
    public static readonly CpuTopology Single = new(1, 1, 1, 1);

    /// <summary>Builds and checks a topology; throws <see cref="ArgumentException"/> saying what is wrong.</summary>
    public CpuTopology(int cpus, int sockets, int cores, int threads)
    {
        Check("sockets", sockets);
        Check("cores", cores);
        Check("threads", threads);
        if (cpus < 1) throw new ArgumentException($"cpus={cpus}: must be at least 1");
        var max = (long)sockets * cores * threads;
        if (cpus > max)
            throw new ArgumentException($"cpus={cpus} is more than sockets*cores*threads = {sockets}*{cores}*{threads} = {max}");
        Cpus = cpus;
        Sockets = sockets;
        Cores = cores;
        Threads = threads;
        // The last possible CPU has the highest APIC ID; every APIC ID must be unicast-addressable in xAPIC mode.
        var highest = ApicIdOf(MaxCpus - 1);
        if (highest > MaxApicId)
            throw new ArgumentException(
                $"sockets={sockets},cores={cores},threads={threads} needs APIC IDs up to {highest}; xAPIC allows {MaxApicId}");
    }

    private static void Check(string name, int n)
    {
        if (n is < 1 or > MaxPerLevel) throw new ArgumentException($"{name}={n}: must be between 1 and {MaxPerLevel}");
    }

    private static int Bits(int count) => count <= 1 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)(count - 1));

    public int ThreadOf(int vcpu) => vcpu % Threads;
    public int CoreOf(int vcpu) => vcpu / Threads % Cores;
    public int SocketOf(int vcpu) => vcpu / ThreadsPerPackage;

    /// <summary>The (initial, x2APIC) APIC ID of vCPU <paramref name="vcpu"/>.</summary>
    public int ApicIdOf(int vcpu) => (SocketOf(vcpu) << PackageShift) | (CoreOf(vcpu) << ThreadBits) | ThreadOf(vcpu);

    /// <summary>
    /// Parses bhyve(8)'s <c>-c [[cpus=]n][,sockets=n][,cores=n][,threads=n][,maxcpus=n]</c>. Unset levels are 1;
    /// with only a CPU count every CPU is its own socket (as bhyve). Without maxcpus the CPU count, when given,
    /// must equal sockets×cores×threads (bhyve's rule); with maxcpus the product must equal maxcpus and the CPU
    /// count may be smaller (the rest of the topology is absent: no CPU hot-plug). An empty string is one CPU.
    /// Throws <see cref="FormatException"/> with the reason.
    /// </summary>
    public static CpuTopology Parse(string text)
    {
        int? cpus = null, sockets = null, cores = null, threads = null, maxcpus = null;
        foreach (var raw in text.Split(','))
        {
            var item = raw.Trim();
            if (item.Length == 0) continue;
            var eq = item.IndexOf('=');
            var key = eq < 0 ? "cpus" : item[..eq].Trim().ToLowerInvariant();
            var valueText = eq < 0 ? item : item[(eq + 1)..].Trim();
            if (!int.TryParse(valueText, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
                throw new FormatException($"-c {text}: '{item}' is not a positive decimal number");
            ref var slot = ref cpus;
            switch (key)
            {
                case "cpus": break;
                case "sockets": slot = ref sockets; break;
                case "cores": slot = ref cores; break;
                case "threads": slot = ref threads; break;
                case "maxcpus": slot = ref maxcpus; break;
                default:
                    throw new FormatException($"-c {text}: unknown key '{key}' (cpus, sockets, cores, threads, maxcpus)");
            }
            if (slot is not null) throw new FormatException($"-c {text}: {key} given twice");
            slot = value;
        }

        foreach (var (name, v) in new[] { ("cpus", cpus), ("sockets", sockets), ("cores", cores), ("threads", threads), ("maxcpus", maxcpus) })
            if (v is < 1 or > MaxApicId + 1)
                throw new FormatException($"-c {text}: {name}={v} must be between 1 and {MaxApicId + 1}");

        var levelsGiven = sockets is not null || cores is not null || threads is not null;
        int c = cores ?? 1, t = threads ?? 1;
        // Only a count (and perhaps maxcpus): one CPU per socket, as bhyve.
        var s = sockets ?? (levelsGiven ? 1 : maxcpus ?? cpus ?? 1);
        var product = (long)s * c * t;
        if (maxcpus is { } m)
        {
            if (product != m)
                throw new FormatException($"-c {text}: sockets*cores*threads = {s}*{c}*{t} = {product} must equal maxcpus={m}");
            if (cpus is { } n && n > m) throw new FormatException($"-c {text}: cpus={n} is more than maxcpus={m}");
        }
        else if (cpus is { } n && n != product)
        {
            throw new FormatException($"-c {text}: cpus={n} must equal sockets*cores*threads = {s}*{c}*{t} = {product}");
        }
        var count = cpus ?? (int)Math.Min(product, int.MaxValue);
        try
        {
            return new CpuTopology(count, s, c, t);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"-c {text}: {e.Message}", e);
        }
    }

    /// <summary><see cref="Parse"/> without the exception: the reason goes to <paramref name="error"/>.</summary>
    public static bool TryParse(string text, out CpuTopology? topology, out string? error)
    {
        try
        {
            topology = Parse(text);
            error = null;
            return true;
        }
        catch (FormatException e)
        {
            topology = null;
            error = e.Message;
            return false;
        }
    }

    /// <summary>In bhyve's syntax; <see cref="Parse"/> reads it back to an equal topology.</summary>
    public override string ToString() =>
        Cpus == MaxCpus
            ? $"cpus={Cpus},sockets={Sockets},cores={Cores},threads={Threads}"
            : $"cpus={Cpus},sockets={Sockets},cores={Cores},threads={Threads},maxcpus={MaxCpus}";
}
