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
    private readonly DeviceStateStore? _state;
    private readonly MessageIrqLine _line;
    /// <summary>Built from a saved state, whose restore has driven the line already.</summary>
    private readonly bool _restored;

    public const int MaxPendingInput = 64 * 1024;

    /// <param name="fabric">Where SetIrq for <paramref name="gsi"/> goes (PIC and IOAPIC, or a placeholder).</param>
    /// <param name="output">Where transmitted bytes go (the console).</param>
    /// <param name="state">Where the registers are kept after each message, for a restart from the last consistent
    /// state; null: a restart is from power-on state.</param>
    public static Props Props(IActorRef fabric, int gsi, Stream output, DeviceStateStore? state = null) =>
        Akka.Actor.Props.Create(() => new UartActor(fabric, gsi, output, state));

    public UartActor(IActorRef fabric, int gsi, Stream output, DeviceStateStore? state = null)
    {
        _output = output;
        _state = state;
        _line = new MessageIrqLine(fabric, gsi, Self);
        // Restore drives the line to the restored level.
        _restored = state?.LastAs<UartState>() is not null;
        _uart = _restored ? Uart.Restore(state!.LastAs<UartState>()!, _line, _pending) : new Uart(_line, _pending);

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

    /// <summary>
    /// A message handled without throwing leaves consistent registers: they are what a restart comes back to. A read
    /// the device failed on is answered with all ones, so the vCPU does not wait out its timeout.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message) =>
        DeviceSnapshots.Receive(() => base.AroundReceive(receive, message), message, Sender, Self, _state, () => _uart.Save());

    /// <summary>The failed instance may have left the line either way: drive it to this instance's level.</summary>
    protected override void PostRestart(Exception reason)
    {
        base.PostRestart(reason);
        if (!_restored) _line.Set(_uart.IrqLevel);
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
