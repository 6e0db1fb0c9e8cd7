using System.Buffers.Binary;
using Actorvisor.Actors.Devices.Virtio.Queue;

namespace Actorvisor.Actors.Devices.Virtio.Net;

/// <summary>
/// virtio-net with one queue pair (virtio 1.2, section 5.1): MAC and link status in the configuration, frames
/// prefixed by struct virtio_net_hdr (12 bytes with VERSION_1; no checksum or segmentation offloads are offered, so
/// the header carries nothing but num_buffers = 1). Received frames wait (at most <see cref="MaxPendingFrames"/>,
/// the rest are dropped as a full NIC drops) until the guest posts receive buffers.
/// </summary>
public sealed class VirtioNet : VirtioDeviceBase
{
    public const int ReceiveQueue = 0, TransmitQueue = 1;
    public const ulong FeatureMac = 1UL << 5, FeatureStatus = 1UL << 16;
    public const ushort StatusLinkUp = 1;
    public const int MaxPendingFrames = 256;
    /// <summary>Largest frame accepted either way (no GSO: an MTU-sized frame is far smaller).</summary>
    public const int MaxFrame = 65535 + 14;
    private const int ConfigLength = 10;
    private const int EthernetHeader = 14;

    private readonly INetBackend _backend;
    private readonly byte[] _mac;
    private readonly ushort _queueSize;
    private readonly Queue<byte[]> _pending = new();

    public VirtioNet(INetBackend backend, ReadOnlySpan<byte> mac, ushort queueSize = 256)
    {
        if (mac.Length != 6) throw new ArgumentException("a MAC address has 6 bytes", nameof(mac));
        _backend = backend;
        _mac = mac.ToArray();
        _queueSize = queueSize;
        backend.Start(frame => PostToOwner(() => Receive(frame)));
    }

    public ReadOnlySpan<byte> Mac => _mac;

    /// <summary>Asked once per frame either way (the VM's fault engine when it has one): lose, duplicate or corrupt it.</summary>
    public INetFaultPoint Faults { get; set; } = NoNetFaults.Instance;
    /// <summary>Frames a fault lost.</summary>
    public long FaultDropped { get; private set; }
    public long RxFrames { get; private set; }
    public long RxDropped { get; private set; }
    public long TxFrames { get; private set; }
    public long TxDropped { get; private set; }

    public override int DeviceId => 1;
    public override ulong OfferedFeatures => VirtioFeatures.QueueCore | FeatureMac | FeatureStatus;
    public override int QueueCount => 2;
    public override ushort MaxQueueSize(int queue) => _queueSize;
    public override int ConfigSize => ConfigLength;

    public override byte ReadConfig(int offset) => offset switch
    {
        >= 0 and < 6 => _mac[offset],
        6 => (byte)StatusLinkUp,
        8 => 1, // max_virtqueue_pairs
        _ => 0,
    };

    public override void WriteConfig(int offset, byte value) { } // the MAC is writable only on legacy devices

    /// <summary>12 bytes with VERSION_1 (num_buffers always present), 10 for a legacy driver without MRG_RXBUF.</summary>
    private int HeaderSize => (Features & VirtioFeatures.Version1) != 0 ? 12 : 10;

    protected override void OnReset() => _pending.Clear();

    protected override void OnNotify(int queue)
    {
        if (queue == ReceiveQueue) DeliverReceived();
        else if (queue == TransmitQueue) Transmit();
    }

    private void Transmit()
    {
        var q = Queue(TransmitQueue)!;
        while (q.Pop() is { } chain)
        {
            var total = (long)chain.ReadableLength - HeaderSize;
            if (total >= EthernetHeader && total <= MaxFrame)
            {
                var frame = new byte[total];
                chain.ReadFrom(Memory, (uint)HeaderSize, frame);
                var fault = Faults.Decide(NetDirection.Transmit, frame);
                switch (fault.Kind)
                {
                    case NetFaultKind.Drop:
                        FaultDropped++;
                        break;
                    case NetFaultKind.Duplicate:
                        _backend.Send(frame);
                        _backend.Send(frame);
                        break;
                    case NetFaultKind.Corrupt:
                        _backend.Send(fault.Apply(frame));
                        break;
                    default:
                        _backend.Send(frame);
                        break;
                }
                TxFrames++;
            }
            else
            {
                TxDropped++;
            }
            Complete(TransmitQueue, chain, 0);
        }
        SignalUsed(TransmitQueue);
    }

    private void Receive(byte[] frame)
    {
        if (frame.Length < EthernetHeader || frame.Length > MaxFrame || _pending.Count >= MaxPendingFrames)
        {
            RxDropped++;
            return;
        }
        var fault = Faults.Decide(NetDirection.Receive, frame);
        switch (fault.Kind)
        {
            case NetFaultKind.Drop:
                FaultDropped++;
                return;
            case NetFaultKind.Duplicate:
                _pending.Enqueue(frame);
                if (_pending.Count < MaxPendingFrames) _pending.Enqueue(frame);
                break;
            case NetFaultKind.Corrupt:
                _pending.Enqueue(fault.Apply(frame));
                break;
            default:
                _pending.Enqueue(frame);
                break;
        }
        DeliverReceived();
    }

    private void DeliverReceived()
    {
        if (Queue(ReceiveQueue) is not { } q) return;
        var delivered = false;
        Span<byte> header = stackalloc byte[12];
        while (_pending.Count > 0 && q.Pop() is { } chain)
        {
            var frame = _pending.Dequeue();
            var hdr = HeaderSize;
            if (chain.WritableLength < hdr + frame.Length)
            {
                // Too big for the guest's buffer: the frame is lost, the buffer stays for the next one.
                q.Unpop();
                RxDropped++;
                continue;
            }
            header.Clear();
            if (hdr == 12) BinaryPrimitives.WriteUInt16LittleEndian(header[10..], 1); // num_buffers
            chain.WriteTo(Memory, 0, header[..hdr]);
            chain.WriteTo(Memory, (uint)hdr, frame);
            Complete(ReceiveQueue, chain, (uint)(hdr + frame.Length));
            RxFrames++;
            delivered = true;
        }
        if (delivered) SignalUsed(ReceiveQueue);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _backend.Dispose();
    }
}
