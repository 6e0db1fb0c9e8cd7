namespace Actorvisor.Actors.Devices.Virtio.Blk;

/// <param name="Path">The raw image file.</param>
/// <param name="ReadOnly">Open the file read-only and offer VIRTIO_BLK_F_RO.</param>
/// <param name="Serial">What GET_ID returns (at most 20 bytes); defaults to the file name.</param>
/// <param name="QueueSize">The request queue's maximum size.</param>
/// <param name="Faults">The fault point asked per request (issue 8); no faults when null.</param>
/// <param name="SynchronousIo">Do file I/O inline on the owner's thread instead of the I/O thread (deterministic runs).</param>
public sealed record VirtioBlkOptions(
    string Path,
    bool ReadOnly = false,
    string? Serial = null,
    ushort QueueSize = 256,
    IBlockFaultPoint? Faults = null,
    bool SynchronousIo = false);
