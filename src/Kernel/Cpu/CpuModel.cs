namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// The fixed CPU model our engine presents: identity, address widths and feature flags. CPUID answers from
/// here (Cpuid.cs), so the guest is told exactly what is implemented and nothing more.
/// </summary>
public sealed record CpuModel
{
    public string Vendor { get; init; } = "GenuineIntel";
    public string BrandString { get; init; } = "Actorvisor software x86-64 CPU";
    /// <summary>EDX after RESET: family/model/stepping signature (SDM Vol. 3A, 10.1.4).</summary>
    public uint Signature { get; init; } = 0x000306A9; // family 6, model 0x3A, stepping 9
    public ulong ResetEdx => Signature;
    public int PhysicalAddressBits { get; init; } = 40;
    public int LinearAddressBits { get; init; } = 48;
    public bool Has1GPages { get; init; } = true;
    /// <summary>Nominal TSC frequency told to the guest (CPUID 0x15/0x16).</summary>
    public ulong TscHz { get; init; } = 1_000_000_000;
    /// <summary>LAPIC bus/timer frequency before division.</summary>
    public ulong BusHz { get; init; } = 100_000_000;

    public static readonly CpuModel Default = new();
}
