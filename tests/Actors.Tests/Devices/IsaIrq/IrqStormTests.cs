using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices.IsaIrq;
using Actorvisor.Kernel.Faults;
using Microsoft.Extensions.Time.Testing;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Tests.Devices.IsaIrq;

/// <summary>The fault engine's storm: a storm rule holds its GSI asserted on the router until the rule goes.</summary>
public class IrqStormTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(100);

    private static FaultRule Storm(string name, ulong gsi) =>
        new(name, new FaultTarget(null, FaultKind.Irq, gsi, gsi), new FaultAction(FaultVerdict.Storm), FaultTrigger.Always);

    private static (int Gsi, bool Level) Next(Akka.TestKit.TestProbe probe) => probe.ExpectMsg<SetIrq>(Wait) is var m ? (m.Gsi, m.Level) : default;

    [Fact]
    public void AStormHoldsItsLineUpThroughADevicesDeassertAndLetsItGoWhenRemoved()
    {
        var pic = CreateTestProbe();
        var ioapic = CreateTestProbe();
        using var isa = new IsaIrqRouter(Sys, pic, ioapic, CreateTestProbe(), Sys.ActorOf(IrqLinesActor.Props()));
        var engine = new FaultEngine(1, new FakeTimeProvider());
        using var storms = new IrqStorms(engine, isa);
        var acpi = CreateTestProbe().Ref;

        engine.Add(Storm("sci-storm", 9));
        Assert.Equal((9, true), Next(pic));
        Assert.Equal((9, true), Next(ioapic));
        isa.Tell(new SetIrq(9, false), acpi);                    // the device lowers its line: the storm keeps it up
        Assert.Equal((9, true), Next(ioapic));
        isa.Tell(new SetIrq(10, false), acpi);                   // other lines follow their devices
        Assert.Equal((10, false), Next(ioapic));
        Assert.Equal(FaultVerdict.Pass, engine.Decide(new FaultPoint(FaultKind.Irq, "acpi-pm", 9)).Verdict); // a source, no verdict

        engine.Pause(true);                                       // paused: the line goes back to the device's level
        Assert.Equal((9, false), Next(ioapic));
        engine.Pause(false);
        Assert.Equal((9, true), Next(ioapic));
        isa.Tell(new SetIrq(9, true), acpi);                      // the device raises it meanwhile ...
        Assert.Equal((9, true), Next(ioapic));
        Assert.True(engine.Remove("sci-storm"));                  // ... so it stays up when the storm ends
        Assert.Equal((9, true), Next(ioapic));
        pic.FishForMessage(m => m is SetIrq { Gsi: 9, Level: true }, Wait);
        ioapic.ExpectNoMsg(Quiet);
    }

    [Fact]
    public void DisposingTheStormsLetsTheLinesGo()
    {
        var ioapic = CreateTestProbe();
        using var isa = new IsaIrqRouter(Sys, CreateTestProbe(), ioapic, CreateTestProbe(), Sys.ActorOf(IrqLinesActor.Props()));
        var engine = new FaultEngine(1, new FakeTimeProvider(), [Storm("s", 20)]);
        var storms = new IrqStorms(engine, isa);                  // a rule from the start holds its line at once
        Assert.Equal((20, true), Next(ioapic));
        storms.Dispose();
        Assert.Equal((20, false), Next(ioapic));
        engine.Clear();                                           // no longer listened to
        ioapic.ExpectNoMsg(Quiet);
    }

    [Theory]
    [InlineData("no GSI", "action=storm", "a storm needs one GSI")]
    [InlineData("range", "action=storm gsi=9-10", "a storm needs one GSI")]
    [InlineData("beyond the IOAPIC", "action=storm gsi=24", "no GSI 24 to storm")]
    [InlineData("device", "action=storm gsi=9 device=acpi-pm", "takes no device")]
    [InlineData("trigger", "action=storm gsi=9 every=2", "takes no trigger or state")]
    public void BadStormRulesAreRefusedWithTheReason(string _, string keys, string message)
    {
        var map = keys.Split(' ').Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]);
        map["name"] = "s";
        var e = Assert.Throws<FormatException>(() => Actorvisor.Host.Faults.FaultScenario.ParseRule(map, "faults add"));
        Assert.Contains(message, e.Message);
        Assert.Contains("'s'", e.Message);
    }
}
