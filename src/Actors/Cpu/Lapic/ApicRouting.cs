using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Cpu.Lapic;

/// <summary>How a LAPIC is addressed right now; published by its vCPU thread, read by the APIC bus.</summary>
public sealed record ApicAddress(int VcpuId, byte Id, byte LogicalId, bool FlatModel, bool Enabled);

/// <summary>Which LAPICs an APIC-bus message is for (SDM Vol. 3A, 11.6.2 "Determining IPI Destination").</summary>
public static class ApicRouting
{
    public const byte Broadcast = 0xFF;

    public static bool Matches(ApicAddress a, ApicDestination d)
    {
        switch (d.Shorthand)
        {
            case DestinationShorthand.Self: return a.VcpuId == d.SourceVcpu;
            case DestinationShorthand.AllIncludingSelf: return true;
            case DestinationShorthand.AllExcludingSelf: return a.VcpuId != d.SourceVcpu;
        }
        if (!d.Logical) return d.Id == Broadcast || d.Id == a.Id;
        if (d.Id == Broadcast) return true;
        if (a.FlatModel) return (a.LogicalId & d.Id) != 0;
        // Cluster model: high nibble is the cluster, low nibble a bit mask within it.
        return (a.LogicalId >> 4) == (d.Id >> 4) && (a.LogicalId & d.Id & 0xF) != 0;
    }

    /// <summary>
    /// The vCPU ids a message goes to. Lowest priority goes to the first match, as bhyve does (no arbitration
    /// on the APIC priority, which a VMM cannot see fresh anyway).
    /// </summary>
    public static IEnumerable<int> Targets(IReadOnlyList<ApicAddress> lapics, LapicDeliver m)
    {
        foreach (var a in lapics)
        {
            if (!Matches(a, m.Destination)) continue;
            yield return a.VcpuId;
            if (m.Mode == DeliveryMode.LowestPriority) yield break;
        }
    }
}
