using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices;
using Actorvisor.Actors.Devices.I8042;
using Actorvisor.Actors.Devices.Pit;
using Actorvisor.Actors.Devices.ResetControl;
using Actorvisor.Actors.Devices.Rtc;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Time;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Tests.Devices;

/// <summary>
/// The actors around PIT, RTC, i8042 and 0xCF9: accesses in, interrupts and reset requests out, timers on
/// a deterministic timer service over a FakeTimeProvider.
/// </summary>
public class TimerDeviceActorTests : TestKit
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
    private readonly DeterministicTimerService _timers;

    public TimerDeviceActorTests() => _timers = new DeterministicTimerService(_clock);

    private static PioWrite Out(ushort port, ushort offset, byte value) => new(port, offset, 1, value, 0);

    private byte In(IActorRef device, ushort port, ushort offset) =>
        (byte)device.Ask<AccessResult>(new PioRead(port, offset, 1, 0), TimeSpan.FromSeconds(5)).GetAwaiter().GetResult().Value;

    [Fact]
    public void PitMode2PulsesIrq0AtEachPeriodOnTheTimerService()
    {
        var isa = CreateTestProbe();
        var pit = Sys.ActorOf(PitActor.Props(isa.Ref, _timers));
        pit.Tell(Out(0x43, 3, 0x34));        // counter 0, LSB/MSB, mode 2
        pit.Tell(Out(0x40, 0, 0xA9));
        pit.Tell(Out(0x40, 0, 0x04));        // 1193 ticks: 999.85 µs
        var status = pit.Ask<PitProtocol.Status>(PitProtocol.GetStatus.Instance).GetAwaiter().GetResult();
        Assert.NotNull(status.ArmedDeadline);
        for (var i = 0; i < 3; i++)
        {
            _clock.Advance(TimeSpan.FromMicroseconds(1001)); // edges at 1000.69 µs + k * 999.85 µs
            Assert.Equal(1, _timers.RunDue());
            isa.ExpectMsg<InterruptProtocol.PulseIrq>(m => Assert.Equal(0, m.Gsi));
            pit.Ask<PitProtocol.Status>(PitProtocol.GetStatus.Instance).GetAwaiter().GetResult(); // re-armed
        }
        Assert.Equal(3, pit.Ask<PitProtocol.Status>(PitProtocol.GetStatus.Instance).GetAwaiter().GetResult().Irq0Pulses);
    }

    [Fact]
    public void PitPortBIsTheSameActorAndShowsOut2()
    {
        var pit = Sys.ActorOf(PitActor.Props(CreateTestProbe().Ref, _timers));
        pit.Tell(Out(0x61, 0, 0x01));        // gate 2 on
        pit.Tell(Out(0x43, 3, 0xB0));        // counter 2, mode 0
        pit.Tell(Out(0x42, 2, 10));
        pit.Tell(Out(0x42, 2, 0));
        Assert.Equal(0x01, In(pit, 0x61, 0) & 0x21);
        _clock.Advance(TimeSpan.FromMicroseconds(20)); // 23 ticks
        Assert.Equal(0x21, In(pit, 0x61, 0) & 0x21);
    }

    [Fact]
    public void RtcUpdateEndedInterruptRaisesIrq8UntilRegisterCIsRead()
    {
        var isa = CreateTestProbe();
        var rtc = Sys.ActorOf(RtcActor.Props(isa.Ref, _timers, 64UL << 20, 0, 1));
        rtc.Tell(Out(0x70, 0, 0x0B));
        rtc.Tell(Out(0x71, 1, 0x12));        // UIE, 24-hour, BCD
        Assert.Equal(0x12, In(rtc, 0x71, 1));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, _timers.RunDue());
        isa.ExpectMsg<InterruptProtocol.SetIrq>(m => { Assert.Equal(8, m.Gsi); Assert.True(m.Level); });
        rtc.Tell(Out(0x70, 0, 0x0C));
        Assert.Equal(0xD0, In(rtc, 0x71, 1)); // IRQF, UF, and PF from the power-on 1024 Hz rate (PIE off)
        isa.ExpectMsg<InterruptProtocol.SetIrq>(m => { Assert.Equal(8, m.Gsi); Assert.False(m.Level); });
        // The memory-size bytes are there for a BIOS: 63 MiB above 1 MiB.
        rtc.Tell(Out(0x70, 0, 0x17));
        var lo = In(rtc, 0x71, 1);
        rtc.Tell(Out(0x70, 0, 0x18));
        Assert.Equal(63 * 1024, lo | In(rtc, 0x71, 1) << 8);
    }

    [Fact]
    public void I8042PulseResetAndPort0xCF9TellTheParent()
    {
        var isa = CreateTestProbe();
        var parent = Sys.ActorOf(Props.Create(() => new Parent(TestActor, I8042Actor.Props(isa.Ref), ResetControlActor.Props())));
        parent.Tell(new Parent.ToChild(0, Out(0x60, 0, 0xF2)));  // identify
        isa.ExpectMsg<InterruptProtocol.SetIrq>(m => { Assert.Equal(1, m.Gsi); Assert.True(m.Level); });
        parent.Tell(new Parent.ToChild(0, Out(0x64, 0, 0xFE)));
        Assert.Equal("i8042", ExpectMsg<LifecycleProtocol.ResetRequested>().Source);
        parent.Tell(new Parent.ToChild(1, Out(0xCF9, 0, 0x02)));
        parent.Tell(new Parent.ToChild(1, Out(0xCF9, 0, 0x06)));
        Assert.Contains("0xCF9", ExpectMsg<LifecycleProtocol.ResetRequested>().Source);
        ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void DeviceTimerReArmingMakesAnEarlierExpiryStale()
    {
        var timer = new DeviceTimer(_timers, TestActor);
        var t0 = _clock.GetTimestamp();
        timer.Arm(t0 + 100);
        timer.Arm(t0 + 100);                 // same deadline: kept, not re-scheduled
        Assert.Equal(t0 + 100, timer.ArmedDeadline);
        _clock.Advance(TimeSpan.FromTicks(100));
        _timers.RunDue();
        var first = ExpectMsg<TimerExpired>();
        Assert.True(timer.IsCurrent(first));
        timer.Arm(t0 + 50);                  // already past: fires at once, with a new generation
        Assert.False(timer.IsCurrent(first));
        _timers.RunDue();
        Assert.True(timer.IsCurrent(ExpectMsg<TimerExpired>()));
        timer.Arm(t0 + 1000);
        timer.Cancel();
        _clock.Advance(TimeSpan.FromTicks(1000));
        Assert.Equal(0, _timers.RunDue());
        ExpectNoMsg(TimeSpan.FromMilliseconds(50));
    }

    /// <summary>Stands where the VM supervisor is: forwards what its children report to the test.</summary>
    private sealed class Parent : ReceiveActor
    {
        public sealed record ToChild(int Index, object Message);

        public Parent(IActorRef test, params Props[] children)
        {
            var refs = children.Select(p => Context.ActorOf(p)).ToArray();
            Receive<ToChild>(m => refs[m.Index].Tell(m.Message));
            Receive<LifecycleProtocol.ResetRequested>(m => test.Tell(m));
        }
    }
}
