namespace Actorvisor.Actors.Devices.Virtio.Queue;

/// <summary>Transport-independent feature bits (virtio 1.2, section 6) that the queue core interprets.</summary>
public static class VirtioFeatures
{
    /// <summary>VIRTIO_F_INDIRECT_DESC (28): descriptors may point at a table of descriptors.</summary>
    public const ulong IndirectDescriptors = 1UL << 28;

    /// <summary>VIRTIO_F_EVENT_IDX (29): used_event / avail_event replace the flag-based suppression.</summary>
    public const ulong EventIndex = 1UL << 29;

    /// <summary>VIRTIO_F_VERSION_1 (32): the modern (non-legacy) interface.</summary>
    public const ulong Version1 = 1UL << 32;

    /// <summary>The transport features the queue core implements; a device may pass these on to its transport.</summary>
    public const ulong QueueCore = IndirectDescriptors | EventIndex | Version1;
}
