using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices.Hpet;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Time;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Actors.Devices.Hpet.HpetRegisters;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Tests.Devices.Hpet;

/// <summary>The HPET actor: MMIO in, SetIrq/PulseIrq/Msi out to the ISA target, timers on a deterministic service.</summary>
public class HpetActorTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 26, 3, 0, 0, TimeSpan.Zero));
    private readonly DeterministicTimerService _timers;

    public HpetActorTests() => _timers = new DeterministicTimerService(_clock);

    private static MmioWrite Write(ulong offset, byte size, ulong value) => new(DefaultBase + offset, offset, size, value, 0);

    private ulong Read(IActorRef hpet, ulong offset, byte size) =>
        hpet.Ask<AccessResult>(new MmioRead(DefaultBase + offset, offset, size, 0), Wait).GetAwaiter().GetResult().Value;

    private HpetProtocol.Status Status(IActorRef hpet) =>
        hpet.Ask<HpetProtocol.Status>(HpetProtocol.GetStatus.Instance, Wait).GetAwaiter().GetResult();

    [Fact]
    public void LegacyTimer0PeriodicPulsesIrq0EachMillisecondOnTheTimerService()
    {
        var isa = CreateTestProbe();
        var observer = CreateTestProbe();
        var hpet = Sys.ActorOf(HpetActor.Props(isa.Ref, _timers, observer.Ref, TimeSpan.Zero));
        Assert.Equal(0x8086_A701UL, Read(hpet, Capabilities, 4));
        // Linux's periodic setup of the legacy clockevent: 32-bit mode, VAL_SET, compare then period.
        hpet.Tell(Write(TimerConfig(0), 4, InterruptEnable | Periodic | ValueSet | Mode32));
        hpet.Tell(Write(TimerComparator(0), 4, 10_000));                      // 1 ms at 10 MHz
        hpet.Tell(Write(TimerComparator(0), 4, 10_000));
        hpet.Tell(Write(Configuration, 4, Enable | LegacyRoute));
        Assert.True(observer.ExpectMsg<HpetProtocol.LegacyReplacementChanged>(Wait).Active);
        Assert.NotNull(Status(hpet).ArmedDeadline);
        for (var i = 1; i <= 3; i++)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(1));
            Assert.Equal(1, _timers.RunDue());
            Assert.Equal(0, isa.ExpectMsg<InterruptProtocol.PulseIrq>(Wait).Gsi);
            Assert.Equal((ulong)(10_000 * i), Status(hpet).Counter);          // re-armed after the expiry
        }
        Assert.Equal(3, Status(hpet).Interrupts);
        hpet.Tell(Write(Configuration, 4, 0));
        Assert.False(observer.ExpectMsg<HpetProtocol.LegacyReplacementChanged>(Wait).Active);
        Assert.Null(Status(hpet).ArmedDeadline);
    }

    /// <summary>As the VM supervisor wires it: the HPET's observer is the ISA router itself.</summary>
    [Fact]
    public void LegacyReplacementThroughTheIsaRouterSilencesThePitUntilTheHpetLetsGo()
    {
        var pic = CreateTestProbe();
        var pit = CreateTestProbe().Ref;
        using var router = new Actorvisor.Actors.Devices.IsaIrq.IsaIrqRouter(Sys, pic, CreateTestProbe(), CreateTestProbe(),
            Sys.ActorOf(Actorvisor.Actors.Devices.IsaIrq.IrqLinesActor.Props()));
        var hpet = Sys.ActorOf(HpetActor.Props(router, _timers, router, TimeSpan.Zero));
        hpet.Tell(Write(TimerConfig(0), 4, InterruptEnable | Periodic | ValueSet | Mode32));
        hpet.Tell(Write(TimerComparator(0), 4, 10_000));
        hpet.Tell(Write(TimerComparator(0), 4, 10_000));
        hpet.Tell(Write(Configuration, 4, Enable | LegacyRoute));
        Status(hpet);                                                       // the switch was told before this reply
        Assert.True(router.LegacyReplacementActive);
        router.Tell(new InterruptProtocol.PulseIrq(0), pit);
        pic.ExpectNoMsg(TimeSpan.FromMilliseconds(100));                    // the 8254's IRQ 0 is cut off
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, _timers.RunDue());
        Assert.Equal(0, pic.ExpectMsg<InterruptProtocol.PulseIrq>(Wait).Gsi); // HPET timer 0 drives it instead
        hpet.Tell(Write(Configuration, 4, 0));
        Status(hpet);
        Assert.False(router.LegacyReplacementActive);
        router.Tell(new InterruptProtocol.PulseIrq(0), pit);
        Assert.Equal(0, pic.ExpectMsg<InterruptProtocol.PulseIrq>(Wait).Gsi);
    }

    [Fact]
    public void LevelTimerOnAnIoApicPinIsSetUntilStatusIsCleared()
    {
        var isa = CreateTestProbe();
        var hpet = Sys.ActorOf(HpetActor.Props(isa.Ref, _timers));
        hpet.Tell(Write(TimerConfig(2), 8, LevelTriggered | InterruptEnable | 20UL << RouteShift));
        hpet.Tell(Write(TimerComparator(2), 8, 500));
        hpet.Tell(Write(Configuration, 8, Enable));
        Status(hpet);
        _clock.Advance(TimeSpan.FromTicks(500));
        Assert.Equal(1, _timers.RunDue());
        isa.ExpectMsg<InterruptProtocol.SetIrq>(m => { Assert.Equal(20, m.Gsi); Assert.True(m.Level); }, Wait);
        Assert.Equal(1UL << 2, Read(hpet, InterruptStatus, 4));
        hpet.Tell(Write(InterruptStatus, 4, 1UL << 2));
        isa.ExpectMsg<InterruptProtocol.SetIrq>(m => { Assert.Equal(20, m.Gsi); Assert.False(m.Level); }, Wait);
    }

    [Fact]
    public void FsbTimerSendsAnMsiToTheIsaTarget()
    {
        var isa = CreateTestProbe();
        var hpet = Sys.ActorOf(HpetActor.Props(isa.Ref, _timers));
        hpet.Tell(Write(TimerConfig(3), 4, InterruptEnable | FsbEnable));
        hpet.Tell(Write(TimerFsbRoute(3), 8, 0xFEE0_0000UL << 32 | 0x31));
        hpet.Tell(Write(TimerComparator(3), 8, 100));
        hpet.Tell(Write(Configuration, 4, Enable));
        Status(hpet);
        _clock.Advance(TimeSpan.FromTicks(100));
        _timers.RunDue();
        var msi = isa.ExpectMsg<InterruptProtocol.Msi>(Wait);
        Assert.Equal(0xFEE0_0000UL, msi.Address);
        Assert.Equal(0x31u, msi.Data);
    }
}
