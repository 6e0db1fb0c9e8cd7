namespace Actorvisor.Actors.Devices.Virtio;

/// <summary>
/// A virtio device behind any transport (virtio 1.2, section 2 and 4). The transport (virtio-pci) owns
/// the device status byte, feature negotiation, the queue registers, notifications and interrupts; the
/// device owns its configuration structure and what its queues carry. A plain model: one owner (the
/// transport's actor) calls it, on one thread at a time.
/// </summary>
public interface IVirtioDevice
{
    /// <summary>The virtio device ID (section 5: 1 network, 2 block, 3 console, 4 entropy).</summary>
    int DeviceId { get; }

    /// <summary>The device-specific feature bits offered (bits 0-23 and 50+); the transport adds its own
    /// (VIRTIO_F_VERSION_1, RING_EVENT_IDX, INDIRECT_DESC ...) only where the device says it supports them.</summary>
    ulong OfferedFeatures { get; }

    int QueueCount { get; }

    /// <summary>The largest queue size the device accepts for <paramref name="queue"/> (a power of 2, at most 32768).</summary>
    ushort MaxQueueSize(int queue);

    /// <summary>Length in bytes of the device configuration structure; reads beyond it return 0.</summary>
    int ConfigSize { get; }

    byte ReadConfig(int offset);

    /// <summary>Driver writes to read-only configuration fields are ignored, as the specification requires of devices.</summary>
    void WriteConfig(int offset, byte value);

    /// <summary>
    /// The driver set DRIVER_OK: from now on the enabled queues are live. Called once per device
    /// initialisation; <see cref="Reset"/> ends it.
    /// </summary>
    void Activate(VirtioActivation activation);

    /// <summary>The driver notified <paramref name="queue"/> (available buffers). Only after <see cref="Activate"/>.</summary>
    void Notify(int queue);

    /// <summary>Device reset (status written 0, or a transport reset): back to the power-on state; host-side
    /// resources (the image file, the TAP) stay open.</summary>
    void Reset();
}

/// <summary>The guest-physical layout of one split virtqueue as the driver programmed it (section 2.7).</summary>
public readonly record struct VirtqueueLayout(ushort Size, ulong DescriptorTable, ulong AvailableRing, ulong UsedRing);

/// <summary>What the transport gives a device on DRIVER_OK.</summary>
/// <param name="Memory">Guest RAM; every access through it is bounds-checked (TryRead/TryWrite).</param>
/// <param name="Features">The features the driver accepted (device and transport bits).</param>
/// <param name="Queues">One entry per queue index: its layout, or null if the driver did not enable it.</param>
/// <param name="Signals">Interrupts and error reporting towards the driver.</param>
/// <param name="Post">Runs an action later on the owner's thread: how a host-side thread (a TAP reader, a
/// socket, a completed file operation) hands its result back to the device model. Safe from any thread.</param>
public sealed record VirtioActivation(
    Actorvisor.Kernel.Memory.GuestMemory Memory,
    ulong Features,
    IReadOnlyList<VirtqueueLayout?> Queues,
    IVirtioSignals Signals,
    Action<Action> Post);

/// <summary>Events from a device to its driver, delivered by the transport (MSI-X vector, or ISR + INTx).</summary>
public interface IVirtioSignals
{
    /// <summary>Used buffers were added to <paramref name="queue"/> (a used buffer notification).</summary>
    void UsedBuffers(int queue);

    /// <summary>The device configuration structure changed (a configuration change notification).</summary>
    void ConfigChanged();

    /// <summary>The driver broke the device's rules (a malformed chain, an address outside RAM): the transport sets
    /// DEVICE_NEEDS_RESET (64) in the status and notifies a configuration change (section 2.1.2). The device must
    /// stop processing its queues until <see cref="IVirtioDevice.Reset"/>.</summary>
    void NeedsReset(string reason);
}
