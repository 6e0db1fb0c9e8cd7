using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices.AcpiPm;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Time;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Actors.Devices.AcpiPm.AcpiPmRegisters;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Tests.Devices.AcpiPm;

/// <summary>The PM actor's wiring: ports in, SCI on IRQ 9 and PowerOffRequested out, TMR_STS on the timer service.</summary>
public class AcpiPmActorTests : TestKit
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
    private readonly DeterministicTimerService _timers;

    public AcpiPmActorTests() => _timers = new DeterministicTimerService(_clock);

    private static PioWrite Out(int offset, byte size, uint value) => new((ushort)(IoBase + offset), (ushort)offset, size, value, 0);

    private uint In(IActorRef pm, int offset, byte size) =>
        (uint)pm.Ask<AccessResult>(new PioRead((ushort)(IoBase + offset), (ushort)offset, size, 0), TimeSpan.FromSeconds(5)).GetAwaiter().GetResult().Value;

    [Fact]
    public void SlpEnWithS5TellsTheSupervisorPowerOffAndOtherTypesDoNot()
    {
        var supervisor = CreateTestProbe();
        var pm = Sys.ActorOf(AcpiPmActor.Props(CreateTestProbe().Ref, _timers, supervisor.Ref));
        pm.Tell(Out(Pm1ControlOffset, 2, 1u << SlpTypShift | SlpEn));   // S1: not ours
        In(pm, Pm1ControlOffset, 2);                                     // the write has been handled
        supervisor.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        pm.Tell(Out(Pm1ControlOffset, 2, 5u << SlpTypShift | SlpEn));
        Assert.Contains("S5", supervisor.ExpectMsg<LifecycleProtocol.PowerOffRequested>().Source);
    }

    [Fact]
    public void WithoutASupervisorRefThePowerOffGoesToTheParent()
    {
        var parent = Sys.ActorOf(Props.Create(() => new Parent(TestActor)));
        parent.Tell(Out(Pm1ControlOffset, 2, 5u << SlpTypShift | SlpEn));
        ExpectMsg<LifecycleProtocol.PowerOffRequested>();
    }

    [Fact]
    public void PowerButtonRaisesSciOnIrq9UntilAcknowledged()
    {
        var isa = CreateTestProbe();
        var pm = Sys.ActorOf(AcpiPmActor.Props(isa.Ref, _timers));
        pm.Tell(Out(Pm1EnableOffset, 2, PwrBtnEn));
        pm.Tell(AcpiPmProtocol.PressPowerButton.Instance);
        isa.ExpectMsg<InterruptProtocol.SetIrq>(m => { Assert.Equal(9, m.Gsi); Assert.True(m.Level); });
        Assert.Equal(PwrBtnSts, In(pm, Pm1StatusOffset, 2));
        pm.Tell(Out(Pm1StatusOffset, 2, PwrBtnSts));
        isa.ExpectMsg<InterruptProtocol.SetIrq>(m => { Assert.Equal(9, m.Gsi); Assert.False(m.Level); });
    }

    [Fact]
    public void TimerPortFollowsTheClockAndTmrEnArmsTheCarry()
    {
        var isa = CreateTestProbe();
        var pm = Sys.ActorOf(AcpiPmActor.Props(isa.Ref, _timers));
        Assert.Equal(0u, In(pm, PmTimerOffset, 4));                       // started: the counter's origin is the actor's start
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(3_579_545u, In(pm, PmTimerOffset, 4));
        pm.Tell(Out(Pm1EnableOffset, 2, TmrEn));
        var status = pm.Ask<AcpiPmProtocol.Status>(AcpiPmProtocol.GetStatus.Instance).GetAwaiter().GetResult();
        Assert.NotNull(status.ArmedDeadline);
        _clock.Advance(TimeSpan.FromSeconds(1.4));                       // 2.4 s > 2^23 ticks (2.34 s)
        Assert.Equal(1, _timers.RunDue());
        isa.ExpectMsg<InterruptProtocol.SetIrq>(m => { Assert.Equal(9, m.Gsi); Assert.True(m.Level); });
        Assert.Equal(TmrSts, In(pm, Pm1StatusOffset, 2) & TmrSts);
    }

    private sealed class Parent : ReceiveActor
    {
        public Parent(IActorRef observer)
        {
            var pm = Context.ActorOf(AcpiPmActor.Props(Context.System.DeadLetters, new DeterministicTimerService(new FakeTimeProvider())));
            Receive<PioWrite>(m => pm.Tell(m));
            Receive<LifecycleProtocol.PowerOffRequested>(m => observer.Tell(m));
        }
    }
}
