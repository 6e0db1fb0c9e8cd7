using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices.Uart;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Tests.Devices.Uart;

/// <summary>The UART actor's host side: input waits for room in the receive FIFO instead of overrunning it.</summary>
public class UartActorTests : TestKit
{
    private const ushort Base = 0x3F8;

    private ulong Read(IActorRef uart, ushort offset)
    {
        uart.Tell(new PioRead((ushort)(Base + offset), offset, 1, 0), TestActor);
        return ExpectMsg<AccessResult>().Value;
    }

    [Fact]
    public void PastedInputLongerThanTheFifoArrivesWholeAsTheGuestReads()
    {
        var uart = Sys.ActorOf(UartActor.Props(CreateTestProbe().Ref, 4, new MemoryStream()));
        // FCR: FIFO on (16 bytes).
        uart.Tell(new PioWrite(Base + 2, 2, 1, UartRegisters.FcrBits.FifoEnable, 0));
        var text = "the quick brown fox jumps over the lazy dog\r"u8.ToArray();
        uart.Tell(new UartProtocol.HostInput(text));

        uart.Tell(UartProtocol.GetStatus.Instance, TestActor);
        var s = ExpectMsg<UartProtocol.Status>();
        Assert.Equal(UartRegisters.FifoDepth, s.ReceivedBytes);
        Assert.Equal(text.Length - UartRegisters.FifoDepth, s.PendingInput);
        Assert.Equal(0, s.DroppedBytes);

        // The guest's driver: while LSR.DR, read RBR.
        var got = new List<byte>();
        while ((Read(uart, 5) & UartRegisters.LsrBits.DataReady) != 0) got.Add((byte)Read(uart, 0));
        Assert.Equal(text, got.ToArray());
        Assert.Equal(0u, Read(uart, 5) & UartRegisters.LsrBits.OverrunError);
    }
}
