using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Cpu.Lapic;
using Actorvisor.Actors.Devices.Hpet;
using Actorvisor.Actors.Devices.IoApic;
using Actorvisor.Actors.Devices.IsaIrq;
using Actorvisor.Actors.Devices.Pic;
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
    public void LegacyReplacementCutsThePitAndRtcOffIrq0And8AndGivesThemBack()
    {
        var pic = CreateTestProbe();
        var ioapic = CreateTestProbe();
        var pit = CreateTestProbe().Ref;
        var rtc = CreateTestProbe().Ref;
        var uart = CreateTestProbe().Ref;
        var hpet = CreateTestProbe().Ref;
        using var isa = new IsaIrqRouter(Sys, pic, ioapic, CreateTestProbe(), Sys.ActorOf(IrqLinesActor.Props()));
        var quiet = TimeSpan.FromMilliseconds(100);

        isa.Tell(new SetIrq(8, true), rtc);                       // an RTC interrupt is pending when the HPET takes over
        Assert.True(pic.ExpectMsg<SetIrq>(Wait).Level);
        isa.Tell(new HpetProtocol.LegacyReplacementChanged(true), hpet);
        Assert.True(isa.LegacyReplacementActive);
        var drop = pic.ExpectMsg<SetIrq>(Wait);                   // the RTC's level no longer reaches the pin
        Assert.Equal((8, false), (drop.Gsi, drop.Level));
        Assert.True(ioapic.ExpectMsg<SetIrq>(Wait).Level);        // the IOAPIC pin follows the same way
        Assert.False(ioapic.ExpectMsg<SetIrq>(Wait).Level);

        isa.Tell(new PulseIrq(0), pit);                           // the PIT's and RTC's changes are recorded only
        isa.Tell(new SetIrq(8, false), rtc);
        isa.Tell(new SetIrq(8, true), rtc);
        pic.ExpectNoMsg(quiet);
        isa.Tell(new SetIrq(4, true), uart);                      // other lines are untouched
        Assert.Equal(4, pic.ExpectMsg<SetIrq>(Wait).Gsi);
        isa.Tell(new PulseIrq(0), hpet);                          // HPET timer 0 owns IRQ 0 (IOAPIC pin 2)
        Assert.Equal(0, pic.ExpectMsg<PulseIrq>(Wait).Gsi);
        isa.Tell(new SetIrq(8, true), hpet);                      // a level-triggered timer 1 on IRQ 8
        var raised = pic.ExpectMsg<SetIrq>(Wait);
        Assert.Equal((8, true), (raised.Gsi, raised.Level));
        isa.Tell(new SetIrq(8, false), hpet);
        Assert.False(pic.ExpectMsg<SetIrq>(Wait).Level);

        isa.Tell(new HpetProtocol.LegacyReplacementChanged(false), hpet);
        Assert.False(isa.LegacyReplacementActive);
        var back = pic.ExpectMsg<SetIrq>(Wait);                   // the RTC raised 8 meanwhile: it shows again
        Assert.Equal((8, true), (back.Gsi, back.Level));
        isa.Tell(new PulseIrq(0), pit);
        Assert.Equal(0, pic.ExpectMsg<PulseIrq>(Wait).Gsi);
        isa.Tell(new PulseIrq(0), hpet);                          // the HPET no longer owns IRQ 0
        pic.ExpectNoMsg(quiet);
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

    /// <summary>
    /// bhyve's vm_isa_assert_irq/deassert/pulse end to end: the same ISA line, through the router, moves the real
    /// 8259 (its INTR on LINT0) and the real IOAPIC (its message to the APIC bus) together, both ways.
    /// </summary>
    [Fact]
    public void AssertDeassertAndPulseDriveTheRealPicAndIoApicTogether()
    {
        var lint0 = CreateTestProbe();
        var apicBus = CreateTestProbe();
        var pic = Sys.ActorOf(PicActor.Props(lint0));
        var ioapic = Sys.ActorOf(IoApicActor.Props(apicBus));
        using var isa = new IsaIrqRouter(Sys, pic, ioapic, apicBus, Sys.ActorOf(IrqLinesActor.Props()));
        // 8259 as Linux sets it up, IRQ 10 level-triggered in the ELCR.
        foreach (var (port, value) in new (ushort, byte)[]
                 { (0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, 0x01), (0xA0, 0x11), (0xA1, 0x38), (0xA1, 0x02),
                   (0xA1, 0x01), (0x21, 0x00), (0xA1, 0x00), (0x4D1, 0x04) })
            pic.Tell(new AccessProtocol.PioWrite(port, 0, 1, value, 0));
        // IOAPIC pin 10: vector 5Ah, level; pin 2 (IRQ 0): vector 30h, edge; both to APIC ID 0.
        void Redirect(uint pin, uint low)
        {
            ioapic.Tell(new AccessProtocol.MmioWrite(0, 0x00, 4, 0x10 + 2 * pin, 0));
            ioapic.Tell(new AccessProtocol.MmioWrite(0, 0x10, 4, low, 0));
        }
        Redirect(10, 0x0000_805A);
        Redirect(2, 0x0000_0030);

        isa.Tell(new SetIrq(10, true));
        Assert.True(lint0.ExpectMsg<LocalInterrupt>(Wait).Level);
        var m = apicBus.ExpectMsg<LapicDeliver>(Wait);
        Assert.Equal((0x5A, TriggerMode.Level), (m.Vector, m.Trigger));
        isa.Tell(new SetIrq(10, false));
        Assert.False(lint0.ExpectMsg<LocalInterrupt>(Wait).Level); // a level pin's request follows the line
        ioapic.Tell(new EndOfInterrupt(0x5A));
        apicBus.ExpectNoMsg(TimeSpan.FromMilliseconds(100));       // deasserted before the EOI: not sent again

        isa.Tell(new PulseIrq(0));
        Assert.True(lint0.ExpectMsg<LocalInterrupt>(Wait).Level);  // edge latched in IRR until the INTA
        Assert.Equal(0x30, apicBus.ExpectMsg<LapicDeliver>(Wait).Vector);
        pic.Tell(InterruptAcknowledge.Instance, TestActor);
        Assert.Equal(0x30ul, ExpectMsg<AccessProtocol.AccessResult>(Wait).Value & 0xFF); // IRQ 0 at the master's base 30h
    }
}
