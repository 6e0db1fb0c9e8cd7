using Actorvisor.Actors.Cpu.Lapic;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Tests.Cpu.Lapic;

/// <summary>MSI address/data decoding (SDM Vol. 3A, 11.11) and APIC destination matching (11.6.2).</summary>
public class MsiTests
{
    [Fact]
    public void PhysicalFixedMsi()
    {
        // Address FEE0_3000h: destination 3, RH=0, DM=0; data 0041h: vector 41h, fixed, edge.
        var m = MsiDecoder.Decode(0xFEE0_3000, 0x0041)!;
        Assert.Equal(0x41, m.Vector);
        Assert.Equal(DeliveryMode.Fixed, m.Mode);
        Assert.Equal(TriggerMode.Edge, m.Trigger);
        Assert.Equal(new ApicDestination(3, false), m.Destination);
    }

    [Fact]
    public void TheDestinationModeBitAloneMakesTheDestinationLogical()
    {
        Assert.True(MsiDecoder.Decode(0xFEE0_F00C, 0x0151)!.Destination.Logical);  // RH=1, DM=1
        Assert.True(MsiDecoder.Decode(0xFEE0_1004, 0x0026)!.Destination.Logical);  // DM=1, RH=0: what Linux's flat logical mode sends
        Assert.False(MsiDecoder.Decode(0xFEE0_F008, 0x0151)!.Destination.Logical); // RH=1 alone: physical
        Assert.Equal(DeliveryMode.LowestPriority, MsiDecoder.Decode(0xFEE0_F00C, 0x0151)!.Mode);
        Assert.Equal(0xF, MsiDecoder.Decode(0xFEE0_F00C, 0x0151)!.Destination.Id);
    }

    [Fact]
    public void LevelBitIsIgnoredAndNmiModeIsKept()
    {
        var m = MsiDecoder.Decode(0xFEE0_0000, 0xC400)!; // trigger=level, assert, NMI
        Assert.Equal(TriggerMode.Edge, m.Trigger);
        Assert.Equal(DeliveryMode.Nmi, m.Mode);
    }

    [Fact]
    public void AddressOutsideTheInterruptWindowIsNotAnInterrupt()
    {
        Assert.Null(MsiDecoder.Decode(0xFED0_0000, 0x41));
        Assert.Null(MsiDecoder.Decode(0x1_FEE0_0000, 0x41));
    }

    private static readonly ApicAddress[] Cpus =
    [
        new(0, Id: 0, LogicalId: 0x01, FlatModel: true, Enabled: true),
        new(1, Id: 1, LogicalId: 0x02, FlatModel: true, Enabled: true),
        new(2, Id: 2, LogicalId: 0x04, FlatModel: true, Enabled: true),
    ];

    private static int[] Targets(LapicDeliver m) => ApicRouting.Targets(Cpus, m).ToArray();

    [Fact]
    public void PhysicalAndLogicalDestinationsSelectTheRightLapics()
    {
        Assert.Equal([1], Targets(MsiDecoder.Decode(0xFEE0_1000, 0x30)!));
        Assert.Equal([0, 1, 2], Targets(MsiDecoder.Decode(0xFEEF_F000, 0x30)!)); // physical broadcast FFh
        Assert.Equal([0, 2], Targets(MsiDecoder.Decode(0xFEE0_500C, 0x30)!));    // logical flat mask 0101b
        Assert.Equal([1], Targets(MsiDecoder.Decode(0xFEE0_600C, 0x130)!));      // lowest priority: the first of 0110b (bhyve)
    }

    [Fact]
    public void ClusterModelMatchesClusterAndMember()
    {
        var cluster = new ApicAddress(0, 0, LogicalId: 0x21, FlatModel: false, Enabled: true);
        Assert.True(ApicRouting.Matches(cluster, new ApicDestination(0x23, true)));
        Assert.False(ApicRouting.Matches(cluster, new ApicDestination(0x13, true)));
        Assert.False(ApicRouting.Matches(cluster, new ApicDestination(0x22, true)));
    }

    [Fact]
    public void ShorthandsAreRelativeToTheSender()
    {
        Assert.Equal([1], Targets(new LapicDeliver(0x30, DeliveryMode.Fixed, TriggerMode.Edge, new(0, false, DestinationShorthand.Self, 1))));
        Assert.Equal([0, 2], Targets(new LapicDeliver(0x30, DeliveryMode.Fixed, TriggerMode.Edge, new(0, false, DestinationShorthand.AllExcludingSelf, 1))));
        Assert.Equal([0, 1, 2], Targets(new LapicDeliver(0x30, DeliveryMode.Fixed, TriggerMode.Edge, new(0, false, DestinationShorthand.AllIncludingSelf, 1))));
    }
}
