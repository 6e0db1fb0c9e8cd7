using System.Security.Cryptography;
using Actorvisor.Actors.Devices.Virtio.Queue;

namespace Actorvisor.Actors.Devices.Virtio.Rng;

/// <summary>
/// virtio-rng, the entropy device (virtio 1.2, section 5.4): one request queue whose device-writable buffers are
/// filled from the host's CSPRNG (getrandom on Linux, through <see cref="RandomNumberGenerator"/>). No features,
/// no configuration.
/// </summary>
public sealed class VirtioRng : VirtioDeviceBase
{
    public const int RequestQueue = 0;
    /// <summary>At most this much per request: the device may return fewer bytes than the buffer holds (5.4.6.1).</summary>
    public const int MaxBytesPerRequest = 64 * 1024;

    private readonly ushort _queueSize;
    private readonly byte[] _buffer = new byte[MaxBytesPerRequest];

    public VirtioRng(ushort queueSize = 64) => _queueSize = queueSize;

    public override int DeviceId => 4;
    public override ulong OfferedFeatures => VirtioFeatures.QueueCore;
    public override int QueueCount => 1;
    public override ushort MaxQueueSize(int queue) => _queueSize;
    public override int ConfigSize => 0;
    public override byte ReadConfig(int offset) => 0;
    public override void WriteConfig(int offset, byte value) { }

    /// <summary>Bytes handed to the guest since power-on (for tests and statistics).</summary>
    public long BytesProvided { get; private set; }

    protected override void OnNotify(int queue)
    {
        var q = Queue(RequestQueue)!;
        while (q.Pop() is { } chain)
        {
            var n = (int)Math.Min(chain.WritableLength, (uint)MaxBytesPerRequest);
            var bytes = _buffer.AsSpan(0, n);
            RandomNumberGenerator.Fill(bytes);
            chain.WriteTo(Memory, 0, bytes);
            bytes.Clear();
            Complete(RequestQueue, chain, (uint)n);
            BytesProvided += n;
        }
        SignalUsed(RequestQueue);
    }
}
