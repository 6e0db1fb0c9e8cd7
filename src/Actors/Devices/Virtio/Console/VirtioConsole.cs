using System.Buffers.Binary;
using Actorvisor.Actors.Devices.Virtio.Queue;

namespace Actorvisor.Actors.Devices.Virtio.Console;

/// <summary>
/// virtio-console with one port (virtio 1.2, section 5.3; no MULTIPORT): queue 0 carries host input to the guest,
/// queue 1 guest output to the host. Host input waits in a bounded <see cref="ConsoleInput"/> until the guest posts
/// receive buffers, so nothing is lost when the guest is slow. EMERG_WRITE is offered (a byte written to emerg_wr
/// goes straight out).
/// </summary>
public sealed class VirtioConsole : VirtioDeviceBase
{
    public const int ReceiveQueue = 0, TransmitQueue = 1;
    public const ulong FeatureEmergencyWrite = 1UL << 2;
    private const int ConfigMaxPorts = 4, ConfigEmergencyWrite = 8, ConfigLength = 12;
    private const int MaxChunk = 64 * 1024;

    private readonly IConsoleBackend _backend;
    private readonly ushort _queueSize;
    private readonly byte[] _buffer = new byte[MaxChunk];

    public VirtioConsole(IConsoleBackend backend, ushort queueSize = 64)
    {
        _backend = backend;
        _queueSize = queueSize;
        Input = new ConsoleInput { DataAvailable = () => PostToOwner(DeliverInput) };
        backend.Start(Input);
    }

    public ConsoleInput Input { get; }

    public override int DeviceId => 3;
    public override ulong OfferedFeatures => VirtioFeatures.QueueCore | FeatureEmergencyWrite;
    public override int QueueCount => 2;
    public override ushort MaxQueueSize(int queue) => _queueSize;
    public override int ConfigSize => ConfigLength;

    public override byte ReadConfig(int offset)
    {
        Span<byte> config = stackalloc byte[ConfigLength];
        config.Clear(); // cols and rows 0: no size reported (F_SIZE is not offered)
        BinaryPrimitives.WriteUInt32LittleEndian(config[ConfigMaxPorts..], 1);
        return (uint)offset < ConfigLength ? config[offset] : (byte)0;
    }

    public override void WriteConfig(int offset, byte value)
    {
        // emerg_wr is a u32 whose low byte is the character; a byte-wise transport writes it first.
        if (offset == ConfigEmergencyWrite) _backend.Write([value]);
    }

    protected override void OnActivated() => DeliverInput();

    protected override void OnNotify(int queue)
    {
        if (queue == ReceiveQueue) DeliverInput();
        else if (queue == TransmitQueue) Transmit();
    }

    private void Transmit()
    {
        var q = Queue(TransmitQueue)!;
        while (q.Pop() is { } chain)
        {
            for (uint offset = 0; offset < chain.ReadableLength;)
            {
                var n = chain.ReadFrom(Memory, offset, _buffer.AsSpan(0, (int)Math.Min(MaxChunk, chain.ReadableLength - offset)));
                _backend.Write(_buffer.AsSpan(0, n));
                offset += (uint)n;
            }
            Complete(TransmitQueue, chain, 0);
        }
        SignalUsed(TransmitQueue);
    }

    private void DeliverInput()
    {
        if (Queue(ReceiveQueue) is not { } q) return;
        var delivered = false;
        while (Input.Count > 0)
        {
            if (q.Pop() is not { } chain) break;
            var n = Input.Peek(_buffer.AsSpan(0, (int)Math.Min(MaxChunk, chain.WritableLength)));
            chain.WriteTo(Memory, 0, _buffer.AsSpan(0, n));
            Input.Consume(n);
            Complete(ReceiveQueue, chain, (uint)n);
            delivered = true;
        }
        if (delivered) SignalUsed(ReceiveQueue);
    }

    protected override void Dispose(bool disposing)
    {
        if (!disposing) return;
        Input.Close();
        _backend.Dispose();
    }
}
