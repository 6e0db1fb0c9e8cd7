using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices.Rtc;
using Actorvisor.Kernel.Time;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Actors.Devices.Rtc.RtcRegisters;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Tests.Devices.Rtc;

/// <summary>The RTC actor with a <see cref="CmosStore"/>: what one instance leaves, the next finds.</summary>
public class RtcActorTests : TestKit
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 26, 13, 45, 30, TimeSpan.Zero));
    private readonly DeterministicTimerService _timers;

    public RtcActorTests() => _timers = new DeterministicTimerService(_clock);

    private static PioWrite Out(int offset, byte value) => new((ushort)(IoBase + offset), (ushort)offset, 1, value, 0);

    private static byte In(IActorRef rtc, int offset) =>
        (byte)rtc.Ask<AccessResult>(new PioRead((ushort)(IoBase + offset), (ushort)offset, 1, 0), TimeSpan.FromSeconds(5)).GetAwaiter().GetResult().Value;

    private static byte Cmos(IActorRef rtc, int index)
    {
        rtc.Tell(Out(IndexPort, (byte)index));
        return In(rtc, DataPort);
    }

    private IActorRef Start(CmosStore? store, ulong ram = 64UL << 20) =>
        Sys.ActorOf(RtcActor.Props(CreateTestProbe().Ref, _timers, ram, 0, 1, store));

    private void StopAndWait(IActorRef actor)
    {
        Watch(actor);
        actor.Tell(PoisonPill.Instance);
        ExpectTerminated(actor);
    }

    [Fact]
    public void NvramAndTheGuestsTimeCarryOverToTheNextInstanceThroughTheStore()
    {
        var store = new CmosStore();
        var first = Start(store);
        Assert.Equal(0, Cmos(first, 0x40));
        first.Tell(Out(DataPort, 0x41));                 // index is still 0x40
        first.Tell(Out(IndexPort, Hours));
        first.Tell(Out(DataPort, 0x07));                 // the guest sets 07:45:30
        first.Tell(Out(ExtendedIndexPort, 0x05));
        first.Tell(Out(ExtendedDataPort, 0x99));
        Assert.Equal(0x07, Cmos(first, Hours));
        StopAndWait(first);
        _clock.Advance(TimeSpan.FromSeconds(3));

        var second = Start(store, ram: 32UL << 20);
        Assert.Equal(0x41, Cmos(second, 0x40));
        Assert.Equal(0x07, Cmos(second, Hours));
        Assert.Equal(0x33, Cmos(second, Seconds));
        second.Tell(Out(ExtendedIndexPort, 0x05));
        Assert.Equal(0x99, In(second, ExtendedDataPort));
        // The memory-size bytes describe the new VM, not the one the RAM was saved from.
        Assert.Equal(31 * 1024, Cmos(second, ExtendedMemoryLow) | Cmos(second, ExtendedMemoryHigh) << 8);
    }

    [Fact]
    public void WithoutAStoreEachInstanceStartsFromPowerOn()
    {
        var first = Start(null);
        first.Tell(Out(IndexPort, 0x40));
        first.Tell(Out(DataPort, 0x41));
        Assert.Equal(0x41, Cmos(first, 0x40));
        StopAndWait(first);
        Assert.Equal(0, Cmos(Start(null), 0x40));
    }
}
