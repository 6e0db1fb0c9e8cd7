namespace Actorvisor.Actors.Devices.Virtio.Blk;

public enum BlockRequestKind { Read, Write, Flush, GetId, Discard, WriteZeroes }

/// <summary>A request as the fault engine sees it: its kind and the sectors it covers.</summary>
public readonly record struct BlockRequest(BlockRequestKind Kind, ulong Sector, uint Bytes);

public enum BlockFaultKind
{
    None,
    /// <summary>The request fails with VIRTIO_BLK_S_IOERR and transfers nothing.</summary>
    IoError,
    /// <summary>Only the first <see cref="BlockFault.TransferBytes"/> bytes are read or written (a torn write), then IOERR.</summary>
    ShortTransfer,
    /// <summary>The request is answered VIRTIO_BLK_S_UNSUPP.</summary>
    Unsupported,
    /// <summary>
    /// The device fails in the middle of the request: a write lands its first <see cref="BlockFault.TransferBytes"/>
    /// bytes (a torn write), then the device breaks (DEVICE_NEEDS_RESET) without completing the request.
    /// </summary>
    Crash,
}

public readonly record struct BlockFault(BlockFaultKind Kind, uint TransferBytes = 0)
{
    public static readonly BlockFault None = new(BlockFaultKind.None);
    public static readonly BlockFault IoError = new(BlockFaultKind.IoError);
    public static BlockFault Short(uint bytes) => new(BlockFaultKind.ShortTransfer, bytes);
    public static BlockFault CrashAfter(uint bytes) => new(BlockFaultKind.Crash, bytes);
}

/// <summary>The failure a crash fault raises inside a device: its guard turns it into a broken device.</summary>
public sealed class InjectedDeviceCrashException(string message) : Exception(message);

/// <summary>
/// The block device's fault point (issue 8): asked once per request, on the device's own thread and in request
/// order, before any I/O, so a seeded fault engine decides the same faults for the same request sequence.
/// </summary>
public interface IBlockFaultPoint
{
    BlockFault Decide(in BlockRequest request);
}

/// <summary>The default: no faults.</summary>
public sealed class NoBlockFaults : IBlockFaultPoint
{
    public static readonly NoBlockFaults Instance = new();
    public BlockFault Decide(in BlockRequest request) => BlockFault.None;
}
