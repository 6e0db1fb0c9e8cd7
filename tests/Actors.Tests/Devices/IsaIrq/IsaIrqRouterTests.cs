using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Cpu.Lapic;
using Actorvisor.Actors.Devices.IsaIrq;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Tests.Devices.IsaIrq;

/// <summary>The ISA router's pin mapping and the APIC bus's delivery of MSIs to a LAPIC's inbox.</summary>
public class IsaIrqRouterTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    [Fact]
    public void IsaIrqReachesPicAndIoApicAndIrq0IsIoApicPin2()
    {
        var pic = CreateTestProbe();
        var ioapic = CreateTestProbe();
        var apicBus = CreateTestProbe();
        var linesActor = Sys.ActorOf(IrqLinesActor.Props());
        using var isa = new IsaIrqRouter(Sys, pic, ioapic, apicBus, linesActor);
        isa.Tell(new SetIrq(4, true));
        Assert.Equal(4, pic.ExpectMsg<SetIrq>(Wait).Gsi);
        Assert.Equal(4, ioapic.ExpectMsg<SetIrq>(Wait).Gsi);
        isa.Tell(new PulseIrq(0));
        Assert.Equal(0, pic.ExpectMsg<PulseIrq>(Wait).Gsi);
        Assert.Equal(2, ioapic.ExpectMsg<PulseIrq>(Wait).Gsi);
        isa.Tell(new SetIrq(20, true));                 // a PCI GSI: IOAPIC only
        Assert.Equal(20, ioapic.ExpectMsg<SetIrq>(Wait).Gsi);
        pic.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        isa.Tell(new Msi(0xFEE0_0000, 0x41));
        apicBus.ExpectMsg<Msi>(Wait);
        linesActor.Tell(IrqLinesActor.GetLines.Instance); // after the copies the router sent from this thread
        var lines = ExpectMsg<IrqLinesActor.Lines>(Wait).ByGsi;
        Assert.Equal((true, 1L), lines[4]);
        Assert.Equal((false, 1L), lines[0]);
    }

    [Fact]
    public void MsiOnTheApicBusLandsInTheDestinationLapicsInbox()
    {
        var ioapic = CreateTestProbe();
        var bus = Sys.ActorOf(ApicBusActor.Props());
        var lapics = new VcpuLapic[2];
        for (var i = 0; i < 2; i++)
        {
            lapics[i] = new VcpuLapic(i, TimeProvider.System, 100_000_000, bus, ioapic, pic: null);
            lapics[i].Model.Write(0xF0, 4, 0x1FF); // software-enable
            bus.Tell(new ApicBusActor.Attach(lapics[i], Sys.ActorOf(LapicActor.Props(lapics[i]))));
        }
        bus.Tell(new Msi(0xFEE0_1000, 0x0052));            // physical destination 1, vector 52h
        AwaitAssert(() =>
        {
            lapics[1].Service();                           // no vCPU thread here: apply the inbox ourselves
            Assert.True(lapics[1].Model.IrrBit(0x52));
        }, Wait);
        lapics[0].Service();
        Assert.False(lapics[0].Model.IrrBit(0x52));
        foreach (var l in lapics) l.Dispose();
    }
}
