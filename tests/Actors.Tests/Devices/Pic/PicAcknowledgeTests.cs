using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices.Pic;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Tests.Devices.Pic;

/// <summary>
/// The 8259 pair's INTA as the vCPU runs it through the actor: a vector while INTR is high; NoRequest when INTR had
/// already dropped (a mask written just before), where a CPU would not have run the cycle.
/// </summary>
public class PicAcknowledgeTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    [Fact]
    public void AcknowledgeAfterTheRequestWasMaskedTakesNothing()
    {
        var lint = CreateTestProbe();
        var pic = Sys.ActorOf(PicActor.Props(lint.Ref));
        foreach (var (port, value) in new (ushort, byte)[] { (0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, 0x00) })
            pic.Tell(new PioWrite(port, 0, 1, value, 0));                     // ICW1-4: vectors 20h-27h; OCW1: all unmasked
        pic.Tell(new PulseIrq(0));
        Assert.True(lint.FishForMessage<LocalInterrupt>(m => m.Level, Wait).Level); // INTR up on LINT0
        pic.Tell(new PioWrite(0x21, 0, 1, 0xFF, 0));                          // masked before the CPU got to it
        pic.Tell(InterruptAcknowledge.Instance);
        var r = ExpectMsg<AccessResult>(Wait).Value;
        Assert.Equal(InterruptAcknowledge.NoRequest, r);                 // not the spurious IRQ7 (vector 27h)

        pic.Tell(new PioWrite(0x21, 0, 1, 0x00, 0));                          // unmasked: IRR0 is still set, INTR rises
        pic.Tell(InterruptAcknowledge.Instance);
        Assert.Equal(0x20UL, ExpectMsg<AccessResult>(Wait).Value);       // IRQ0's vector, INTR now low
    }
}
