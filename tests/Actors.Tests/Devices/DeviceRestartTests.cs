using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices;
using Actorvisor.Actors.Devices.Pit;
using Actorvisor.Actors.Devices.Rtc;
using Actorvisor.Actors.Devices.Uart;
using Actorvisor.Kernel.Messages;
using Actorvisor.Kernel.Time;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Tests.Devices;

/// <summary>
/// A device actor that fails mid-stream and is restarted by its supervisor comes back with the registers it
/// had before the failing message when it has a <see cref="DeviceStateStore"/>, from power-on state without
/// one, and in both cases drives its interrupt line to the state it came back with.
/// </summary>
public class DeviceRestartTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    private const ushort Com1 = 0x3F8;
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 26, 9, 0, 0, TimeSpan.Zero));
    private readonly TestProbe _fabric;

    public DeviceRestartTests() => _fabric = CreateTestProbe("fabric");

    /// <summary>Restarts its one child on any failure, as the VM supervisor's restart policies do.</summary>
    private sealed class RestartingParent : ReceiveActor
    {
        public RestartingParent(Props child, IActorRef reportTo) => reportTo.Tell(Context.ActorOf(child, "device"));

        protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Restart);
    }

    private IActorRef Supervised(Props device)
    {
        Sys.ActorOf(Props.Create(() => new RestartingParent(device, TestActor)));
        return ExpectMsg<IActorRef>(Wait);
    }

    /// <summary>A console that fails the write it is told to: the UART has taken the byte when it throws.</summary>
    private sealed class FailingConsole : MemoryStream
    {
        private int _failNext;

        /// <summary>The next write throws (the UART's actor writes when it handles the message, later than the test's Tell).</summary>
        public void FailNextWrite() => Volatile.Write(ref _failNext, 1);

        // MemoryStream's span overload comes here for a derived type.
        public override void Write(byte[] buffer, int offset, int count)
        {
            if (Interlocked.Exchange(ref _failNext, 0) == 1) throw new IOException("console gone");
            base.Write(buffer, offset, count);
        }
    }

    private byte Read(IActorRef device, ushort port, ushort offset)
    {
        device.Tell(new PioRead(port, offset, 1, 0), TestActor);
        return (byte)ExpectMsg<AccessResult>(Wait).Value;
    }

    private static void Write(IActorRef device, ushort port, ushort offset, byte value) =>
        device.Tell(new PioWrite(port, offset, 1, value, 0));

    private void ProgramUart(IActorRef uart)
    {
        Write(uart, Com1 + 3, 3, 0x80);   // LCR: DLAB
        Write(uart, Com1, 0, 0x0C);       // divisor 12 (9600 baud)
        Write(uart, Com1 + 1, 1, 0x00);
        Write(uart, Com1 + 3, 3, 0x03);   // 8N1
        Write(uart, Com1 + 7, 7, 0x5A);   // scratch
        Write(uart, Com1 + 1, 1, 0x02);   // IER: THR empty
        Write(uart, Com1 + 4, 4, 0x08);   // MCR: OUT2 gates the interrupt to the PIC
    }

    private bool NextLevel(int gsi) => _fabric.FishForMessage<InterruptProtocol.SetIrq>(m => m.Gsi == gsi, Wait).Level;

    [Fact]
    public void AUartRestartedFromItsLastStateKeepsDivisorLcrIerAndScratchAndReassertsItsLine()
    {
        var console = new FailingConsole();
        var store = new DeviceStateStore();
        var uart = Supervised(UartActor.Props(_fabric, 4, console, store));
        ProgramUart(uart);
        Assert.True(NextLevel(4)); // THR empty with IER.ETBEI and OUT2
        Assert.Equal(0x03, Read(uart, Com1 + 3, 3));

        console.FailNextWrite();
        Write(uart, Com1, 0, (byte)'x'); // the UART takes the byte, then the console throws
        // The new instance drives IRQ 4 to its restored level: asserted (THR empty, IER and OUT2 as programmed).
        AwaitAssert(() => Assert.True(NextLevel(4)), Wait);
        Assert.Equal(0x03, Read(uart, Com1 + 3, 3));
        Assert.Equal(0x02, Read(uart, Com1 + 1, 1));
        Assert.Equal(0x08, Read(uart, Com1 + 4, 4) & 0x0F);
        Assert.Equal(0x5A, Read(uart, Com1 + 7, 7));
        Assert.Equal(0x02, Read(uart, Com1 + 2, 2) & 0x0F); // IIR: THR empty pending
        Write(uart, Com1 + 3, 3, 0x83);
        Assert.Equal(0x0C, Read(uart, Com1, 0));
        Assert.Equal(0x00, Read(uart, Com1 + 1, 1));

        // It serves the guest again.
        Write(uart, Com1 + 3, 3, 0x03);
        Write(uart, Com1, 0, (byte)'y');
        AwaitCondition(() => console.ToArray().Contains((byte)'y'), Wait);
    }

    [Fact]
    public void AUartRestartedFromPowerOnForgetsItsRegistersAndReleasesItsLine()
    {
        var console = new FailingConsole();
        var uart = Supervised(UartActor.Props(_fabric, 4, console));
        ProgramUart(uart);
        Assert.True(NextLevel(4));
        console.FailNextWrite();
        Write(uart, Com1, 0, (byte)'x');
        AwaitAssert(() => Assert.False(NextLevel(4)), Wait);
        Assert.Equal(0x00, Read(uart, Com1 + 3, 3));
        Assert.Equal(0x00, Read(uart, Com1 + 1, 1));
        Assert.Equal(0x00, Read(uart, Com1 + 7, 7));
    }

    private static PioWrite RtcOut(int offset, byte value) => new((ushort)(RtcRegisters.IoBase + offset), (ushort)offset, 1, value, 0);

    private byte Cmos(IActorRef rtc, int index)
    {
        rtc.Tell(RtcOut(RtcRegisters.IndexPort, (byte)index));
        return Read(rtc, RtcRegisters.IoBase + RtcRegisters.DataPort, RtcRegisters.DataPort);
    }

    private void SetCmos(IActorRef rtc, int index, byte value)
    {
        rtc.Tell(RtcOut(RtcRegisters.IndexPort, (byte)index));
        rtc.Tell(RtcOut(RtcRegisters.DataPort, value));
    }

    /// <summary>NVRAM 0x40 and 0x7f set, periodic interrupts on and one raised (IRQF, line 8 high), index left at B.</summary>
    private IActorRef ProgramRtc(DeviceStateStore? store, CmosStore cmos)
    {
        var rtc = Supervised(RtcActor.Props(_fabric, new DeterministicTimerService(_clock), 64UL << 20, 0, 1, cmos, store));
        SetCmos(rtc, 0x40, 0x41);
        SetCmos(rtc, 0x7F, 0x99);
        SetCmos(rtc, RtcRegisters.RegisterB, RtcRegisters.B24Hour | RtcRegisters.BPeriodicInterruptEnable);
        Assert.Equal(0x41, Cmos(rtc, 0x40)); // a round trip: the actor has handled the writes before time moves
        rtc.Tell(RtcOut(RtcRegisters.IndexPort, RtcRegisters.RegisterB));
        _clock.Advance(TimeSpan.FromMilliseconds(5)); // several 1024 Hz periods
        rtc.Tell(RtcOut(RtcRegisters.DataPort, RtcRegisters.B24Hour | RtcRegisters.BPeriodicInterruptEnable)); // evaluates: PF, IRQF
        Assert.True(NextLevel(RtcActor.Irq));
        return rtc;
    }

    [Fact]
    public void AnRtcRestartedFromItsLastStateKeepsNvramRegisterBAndItsPendingInterrupt()
    {
        var rtc = ProgramRtc(new DeviceStateStore(), new CmosStore());
        rtc.Tell(Kill.Instance);
        Assert.True(NextLevel(RtcActor.Irq)); // re-asserted by the new instance: IRQF is still set
        Assert.Equal(RtcRegisters.B24Hour | RtcRegisters.BPeriodicInterruptEnable,
            Read(rtc, RtcRegisters.IoBase + RtcRegisters.DataPort, RtcRegisters.DataPort)); // the index survived too: B
        Assert.Equal(0x41, Cmos(rtc, 0x40));
        Assert.Equal(0x99, Cmos(rtc, 0x7F));
        Assert.Equal(RtcRegisters.CInterruptRequest | RtcRegisters.CPeriodic, Cmos(rtc, RtcRegisters.RegisterC) & 0xC0);
        Assert.False(NextLevel(RtcActor.Irq)); // reading C released it
    }

    [Fact]
    public void AnRtcRestartedFromPowerOnKeepsOnlyWhatItsBatteryKeeps()
    {
        var rtc = ProgramRtc(null, new CmosStore());
        rtc.Tell(Kill.Instance);
        Assert.False(NextLevel(RtcActor.Irq));
        Assert.Equal(0x41, Cmos(rtc, 0x40)); // NVRAM is battery-backed
        Assert.Equal(RtcRegisters.B24Hour, Cmos(rtc, RtcRegisters.RegisterB)); // interrupt enables are not
        Assert.Equal(0, Cmos(rtc, RtcRegisters.RegisterC));
    }

    private void ProgramPit(IActorRef pit)
    {
        Write(pit, PitRegisters.IoBase + 3, 3, 0x34);  // counter 0: LSB then MSB, mode 2
        Write(pit, PitRegisters.IoBase, 0, 0x34);
        Write(pit, PitRegisters.IoBase, 0, 0x12);      // count 0x1234
        Write(pit, PitRegisters.IoBase + 3, 3, 0xB6);  // counter 2: mode 3
        Write(pit, PitRegisters.PortB, 0, 0x01);       // gate 2 on
        Read(pit, PitRegisters.PortB, 0);              // a round trip: the writes are handled before time moves
    }

    private (byte Status, int Count) Counter0(IActorRef pit)
    {
        Write(pit, PitRegisters.IoBase + 3, 3, 0xC2);  // read-back: count and status of counter 0
        var status = Read(pit, PitRegisters.IoBase, 0);
        var lsb = Read(pit, PitRegisters.IoBase, 0);
        var msb = Read(pit, PitRegisters.IoBase, 0);
        return (status, lsb | msb << 8);
    }

    [Fact]
    public void APitRestartedFromItsLastStateKeepsItsModesCountsAndTime()
    {
        var pit = Supervised(PitActor.Props(_fabric, new DeterministicTimerService(_clock), new DeviceStateStore()));
        ProgramPit(pit);
        _clock.Advance(TimeSpan.FromMicroseconds(2)); // the count loads on the next CLK
        var before = Counter0(pit);
        pit.Tell(Kill.Instance);
        var after = Counter0(pit);
        Assert.Equal(0x34, after.Status & 0x3F);   // LSB/MSB, mode 2, binary
        Assert.Equal(before.Count, after.Count);   // same clock, same tick: the same count
        Assert.InRange(after.Count, 0x1200, 0x1234);
        Assert.Equal(0x01, Read(pit, PitRegisters.PortB, 0) & 0x03);
        _clock.Advance(TimeSpan.FromMicroseconds(838)); // about 1000 ticks
        Assert.InRange(Counter0(pit).Count, after.Count - 1010, after.Count - 990);
    }

    [Fact]
    public void APitRestartedFromPowerOnIsBackInMode3()
    {
        var pit = Supervised(PitActor.Props(_fabric, new DeterministicTimerService(_clock)));
        ProgramPit(pit);
        pit.Tell(Kill.Instance);
        Assert.Equal(0x36, Counter0(pit).Status & 0x3F); // mode 3, LSB then MSB: the BIOS's state
        Assert.Equal(0, Read(pit, PitRegisters.PortB, 0) & 0x03);
    }

    [Fact]
    public void AReadTheDeviceFailsOnIsAnsweredWithAllOnesAndLeavesTheStoredStateAsItWas()
    {
        var store = new DeviceStateStore();
        var reader = CreateTestProbe();
        DeviceSnapshots.Receive(() => true, new PioWrite(0x70, 0, 1, 1, 0), reader.Ref, TestActor, store, () => "before");
        Assert.Throws<InvalidOperationException>(() => DeviceSnapshots.Receive(() => throw new InvalidOperationException("bug"),
            new PioRead(0x71, 1, 2, 0), reader.Ref, TestActor, store, () => "after"));
        Assert.Equal(0xFFFFUL, reader.ExpectMsg<AccessResult>(Wait).Value);
        Assert.Equal("before", store.Last);
        Assert.Equal(1, store.Stores);
        Assert.Throws<InvalidOperationException>(() => DeviceSnapshots.Receive(() => throw new InvalidOperationException("bug"),
            new PioWrite(0x70, 0, 1, 1, 0), reader.Ref, TestActor, store, () => "after"));
        reader.ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // a write needs no answer
    }
}
