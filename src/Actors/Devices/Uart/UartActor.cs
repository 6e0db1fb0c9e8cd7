using System.Buffers;
using Akka.Actor;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.Uart;

/// <summary>
/// The actor around a <see cref="Uart"/> model: bus accesses become register reads and writes, host input
/// becomes received bytes, transmitted bytes go to the output stream after each write, and the model's
/// interrupt line becomes <see cref="InterruptProtocol.SetIrq"/> messages to the interrupt fabric.
/// Host input is flow-controlled as QEMU's character backends are: it waits in a host-side queue and enters
/// the receive FIFO only as the guest makes room, so a pasted line is not lost to FIFO overruns. The queue
/// holds at most <see cref="MaxPendingInput"/> bytes; beyond that, input is dropped and counted.
/// </summary>
public sealed class UartActor : ReceiveActor
{
    private readonly Uart _uart;
    private readonly Stream _output;
    private readonly ArrayBufferWriter<byte> _pending = new(256);
    private readonly Queue<byte> _input = new();
    private long _droppedInput;

    public const int MaxPendingInput = 64 * 1024;

    /// <param name="fabric">Where SetIrq for <paramref name="gsi"/> goes (PIC and IOAPIC, or a placeholder).</param>
    /// <param name="output">Where transmitted bytes go (the console).</param>
    public static Props Props(IActorRef fabric, int gsi, Stream output) =>
        Akka.Actor.Props.Create(() => new UartActor(fabric, gsi, output));

    public UartActor(IActorRef fabric, int gsi, Stream output)
    {
        _output = output;
        _uart = new Uart(new MessageIrqLine(fabric, gsi, Self), _pending);

        Receive<PioRead>(m =>
        {
            Sender.Tell(new AccessResult(_uart.Read(m.Offset, m.Size)));
            FeedInput();
        });
        Receive<PioWrite>(m =>
        {
            _uart.Write(m.Offset, m.Size, m.Value);
            Flush();
        });
        Receive<MmioRead>(m =>
        {
            Sender.Tell(new AccessResult(_uart.Read(m.Offset, m.Size)));
            FeedInput();
        });
        Receive<MmioWrite>(m =>
        {
            _uart.Write(m.Offset, m.Size, m.Value);
            Flush();
        });
        Receive<UartProtocol.HostInput>(m =>
        {
            foreach (var b in m.Data)
            {
                if (_input.Count < MaxPendingInput) _input.Enqueue(b);
                else _droppedInput++;
            }
            FeedInput();
        });
        Receive<UartProtocol.GetStatus>(_ => Sender.Tell(new UartProtocol.Status(
            _uart.TransmittedBytes, _uart.ReceivedBytes, _uart.DroppedBytes + _droppedInput, _uart.IrqLevel, _uart.Save())
            { PendingInput = _input.Count }));
    }

    /// <summary>Moves queued host input into the receive FIFO while it has room (after a read may have made some).</summary>
    private void FeedInput()
    {
        while (_input.Count > 0 && _uart.ReceiveSpace > 0) _uart.Receive(_input.Dequeue());
    }

    private void Flush()
    {
        if (_pending.WrittenCount == 0) return;
        _output.Write(_pending.WrittenSpan);
        _output.Flush();
        _pending.ResetWrittenCount();
    }
}
