using System.Buffers;
using Akka.Actor;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.Uart;

/// <summary>
/// The actor around a <see cref="Uart"/> model: bus accesses become register reads and writes, host input
/// becomes received bytes, transmitted bytes go to the output stream after each write, and the model's
/// interrupt line becomes <see cref="InterruptProtocol.SetIrq"/> messages to the interrupt fabric.
/// </summary>
public sealed class UartActor : ReceiveActor
{
    private readonly Uart _uart;
    private readonly Stream _output;
    private readonly ArrayBufferWriter<byte> _pending = new(256);

    /// <param name="fabric">Where SetIrq for <paramref name="gsi"/> goes (PIC and IOAPIC, or a placeholder).</param>
    /// <param name="output">Where transmitted bytes go (the console).</param>
    public static Props Props(IActorRef fabric, int gsi, Stream output) =>
        Akka.Actor.Props.Create(() => new UartActor(fabric, gsi, output));

    public UartActor(IActorRef fabric, int gsi, Stream output)
    {
        _output = output;
        _uart = new Uart(new MessageIrqLine(fabric, gsi, Self), _pending);

        Receive<PioRead>(m => Sender.Tell(new AccessResult(_uart.Read(m.Offset, m.Size))));
        Receive<PioWrite>(m =>
        {
            _uart.Write(m.Offset, m.Size, m.Value);
            Flush();
        });
        Receive<MmioRead>(m => Sender.Tell(new AccessResult(_uart.Read(m.Offset, m.Size))));
        Receive<MmioWrite>(m =>
        {
            _uart.Write(m.Offset, m.Size, m.Value);
            Flush();
        });
        Receive<UartProtocol.HostInput>(m =>
        {
            foreach (var b in m.Data) _uart.Receive(b);
        });
        Receive<UartProtocol.GetStatus>(_ => Sender.Tell(new UartProtocol.Status(
            _uart.TransmittedBytes, _uart.ReceivedBytes, _uart.DroppedBytes, _uart.IrqLevel, _uart.Save())));
    }

    private void Flush()
    {
        if (_pending.WrittenCount == 0) return;
        _output.Write(_pending.WrittenSpan);
        _output.Flush();
        _pending.ResetWrittenCount();
    }
}
