using Actorvisor.Kernel.Faults;

namespace Actorvisor.Actors.Devices.Virtio.Net;

public enum NetDirection { Transmit, Receive }

public enum NetFaultKind { None, Drop, Duplicate, Corrupt }

/// <param name="Mask">For <see cref="NetFaultKind.Corrupt"/>: XORed, little-endian, into the 8 bytes after the Ethernet header.</param>
public readonly record struct NetFault(NetFaultKind Kind, ulong Mask = 0)
{
    public static readonly NetFault None = new(NetFaultKind.None);

    /// <summary>The frame with the corruption applied (a copy; the original may be shared).</summary>
    public byte[] Apply(byte[] frame)
    {
        var copy = (byte[])frame.Clone();
        for (var i = 0; i < 8 && PayloadOffset + i < copy.Length; i++) copy[PayloadOffset + i] ^= (byte)(Mask >> (8 * i));
        return copy;
    }

    /// <summary>Where a corruption lands: after the destination, source and EtherType, so the frame still reaches the guest.</summary>
    public const int PayloadOffset = 14;
}

/// <summary>The network device's fault point: asked once per frame, on the device's thread, in order.</summary>
public interface INetFaultPoint
{
    NetFault Decide(NetDirection direction, ReadOnlySpan<byte> frame);
}

public sealed class NoNetFaults : INetFaultPoint
{
    public static readonly NoNetFaults Instance = new();
    public NetFault Decide(NetDirection direction, ReadOnlySpan<byte> frame) => NetFault.None;
}

/// <summary>
/// Frames decided by the VM's fault engine: <c>net.tx</c> and <c>net.rx</c> events addressed by the frame's
/// length; drop loses the frame, duplicate delivers it twice, corrupt XORs a mask (or one seeded random bit)
/// into the first 8 bytes after the Ethernet header.
/// </summary>
public sealed class EngineNetFaults(FaultEngine engine, string device) : INetFaultPoint
{
    public NetFault Decide(NetDirection direction, ReadOnlySpan<byte> frame)
    {
        if (!engine.Active) return NetFault.None;
        var kind = direction == NetDirection.Transmit ? FaultKind.NetTx : FaultKind.NetRx;
        var d = engine.Decide(new FaultPoint(kind, device, (ulong)frame.Length), 8);
        return d.Verdict switch
        {
            FaultVerdict.Drop => new NetFault(NetFaultKind.Drop),
            FaultVerdict.Duplicate => new NetFault(NetFaultKind.Duplicate),
            FaultVerdict.Corrupt => new NetFault(NetFaultKind.Corrupt, d.Value),
            _ => NetFault.None,
        };
    }
}
