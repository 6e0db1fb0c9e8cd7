using Actorvisor.Kernel.Faults;

namespace Actorvisor.Actors.Devices.Virtio.Blk;

/// <summary>
/// A block device's fault point decided by the VM's fault engine: each request is a <c>blk.read</c> or
/// <c>blk.write</c> event (flush, discard and write-zeroes count as writes) addressed by its first sector, with its
/// bytes as the value, so a rule's sector range matches the requests that overlap it. drop fails the request with
/// VIRTIO_BLK_S_IOERR, short moves the rule's bytes and then fails it, crash breaks the device (after writing the
/// rule's bytes of a write: a torn write).
/// </summary>
public sealed class EngineBlockFaults(FaultEngine engine, string device) : IBlockFaultPoint
{
    public BlockFault Decide(in BlockRequest request)
    {
        if (!engine.Active) return BlockFault.None;
        FaultKind? kind = request.Kind switch
        {
            BlockRequestKind.Read => FaultKind.BlkRead,
            BlockRequestKind.GetId => null,
            _ => FaultKind.BlkWrite,
        };
        if (kind is null) return BlockFault.None;
        var d = engine.Decide(new FaultPoint(kind.Value, device, request.Sector, request.Bytes));
        return d.Verdict switch
        {
            FaultVerdict.Drop => BlockFault.IoError,
            FaultVerdict.Short => BlockFault.Short((uint)d.Value),
            FaultVerdict.Crash => BlockFault.CrashAfter((uint)d.Value),
            _ => BlockFault.None,
        };
    }
}
