using Actorvisor.Actors.Devices.Virtio;

namespace Actorvisor.Actors.Tests.Devices.Pci;

/// <summary>
/// A virtio device for transport tests: it records what the transport calls and keeps an 8-byte configuration
/// whose first 4 bytes are read-only (a "capacity") and the next 4 writable. It never touches its queues.
/// </summary>
public sealed class FakeVirtioDevice(int deviceId = 4, int queues = 2, ulong features = 1UL << 28 | 1UL << 5) : IVirtioDevice
{
    /// <summary>The name tests register it under in the device catalog.</summary>
    public const string CatalogName = "test-virtio";

    private readonly byte[] _config = [0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0];
    public int DeviceId { get; } = deviceId;
    public ulong OfferedFeatures { get; } = features;
    public int QueueCount { get; } = queues;
    public ushort MaxQueueSize(int queue) => 256;
    public int ConfigSize => _config.Length;
    public byte ReadConfig(int offset) => _config[offset];

    public void WriteConfig(int offset, byte value)
    {
        if (offset >= 4) _config[offset] = value;
    }

    public VirtioActivation? Activation { get; private set; }
    public List<int> Notified { get; } = new();
    public int Resets { get; private set; }

    public void Activate(VirtioActivation activation) => Activation = activation;
    public void Notify(int queue) => Notified.Add(queue);

    public void Reset()
    {
        Resets++;
        Activation = null;
        Notified.Clear();
        _config[4] = _config[5] = _config[6] = _config[7] = 0;
    }
}
