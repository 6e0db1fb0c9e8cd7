using System.Buffers.Binary;
using Actorvisor.Actors.Devices.Virtio.Net;
using Actorvisor.Actors.Devices.Virtio.Queue;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

/// <summary>Plays a virtio-net driver: posts receive buffers, sends frames with the 12-byte header, collects frames.</summary>
internal sealed class NetTestDriver : IDisposable
{
    public const int BufferSize = 2048;
    private readonly TestRing _rx, _tx;
    private readonly ulong _rxArea;
    private int _usedSeen;

    public NetTestDriver(byte[] mac, INetBackend backend, ushort queueSize = 32)
    {
        Harness = new VirtioHarness();
        Mac = mac;
        Device = new VirtioNet(backend, mac, queueSize);
        _rx = Harness.Ring(0, queueSize);
        _tx = Harness.Ring(1, queueSize);
        _rxArea = Harness.Alloc(BufferSize * queueSize, 4096);
        Harness.Activate(Device, Device.OfferedFeatures, _rx, _tx);
    }

    public VirtioHarness Harness { get; }
    public VirtioNet Device { get; }
    public byte[] Mac { get; }
    public TestRing Rx => _rx;

    /// <summary>Makes every receive descriptor available (descriptor i owns buffer i).</summary>
    public void PostReceiveBuffers(int count = -1, uint size = BufferSize)
    {
        var n = count < 0 ? _rx.Size - (ushort)(_rx.AvailIdx - _rx.UsedIdx) : count;
        for (var i = 0; i < n; i++)
        {
            var slot = (ushort)(_rx.AvailIdx % _rx.Size);
            _rx.SetDesc(slot, _rxArea + (ulong)slot * BufferSize, size, Virtqueue.DescWrite);
            _rx.Publish(slot);
        }
        Device.Notify(VirtioNet.ReceiveQueue);
    }

    public void Send(ReadOnlySpan<byte> frame)
    {
        // Header and frame in separate descriptors, as Linux does without any_header_sg.
        var hdr = Harness.Put(new byte[12]);
        var data = Harness.Put(frame);
        _tx.AddChain((hdr, 12, false), (data, (uint)frame.Length, false));
        Device.Notify(VirtioNet.TransmitQueue);
    }

    /// <summary>Frames received since the last call (headers checked and stripped); reposts their buffers.</summary>
    public List<byte[]> Take()
    {
        Harness.Owner.Drain();
        var frames = new List<byte[]>();
        while (_usedSeen != _rx.UsedIdx)
        {
            var (id, len) = _rx.UsedElem(_usedSeen++);
            var bytes = Harness.Get(_rxArea + id * BufferSize, (int)len);
            if (BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(10)) != 1) throw new InvalidOperationException("num_buffers is not 1");
            if (bytes.AsSpan(0, 10).IndexOfAnyExcept((byte)0) >= 0) throw new InvalidOperationException("header fields other than num_buffers set");
            frames.Add(bytes[12..]);
        }
        if (frames.Count > 0) PostReceiveBuffers();
        return frames;
    }

    /// <summary>Waits (driving the device's owner queue) until a frame matching <paramref name="match"/> arrives.</summary>
    public byte[]? WaitFor(Func<byte[], bool> match, int timeoutMs = 5000, Action<byte[]>? other = null)
    {
        byte[]? found = null;
        Harness.Owner.RunUntil(() =>
        {
            foreach (var f in Take())
            {
                if (found is null && match(f)) found = f;
                else other?.Invoke(f);
            }
            return found is not null;
        }, timeoutMs);
        return found;
    }

    public void Dispose()
    {
        Device.Dispose();
        Harness.Dispose();
    }
}

/// <summary>Just enough Ethernet, ARP, IPv4 and UDP to talk to a host stack.</summary>
internal static class Frames
{
    public static readonly byte[] Broadcast = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

    public static byte[] Ethernet(byte[] dst, byte[] src, ushort type, ReadOnlySpan<byte> payload)
    {
        var f = new byte[Math.Max(60, 14 + payload.Length)];
        dst.CopyTo(f, 0);
        src.CopyTo(f, 6);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), type);
        payload.CopyTo(f.AsSpan(14));
        return f;
    }

    public static byte[] Arp(ushort op, byte[] senderMac, byte[] senderIp, byte[] targetMac, byte[] targetIp, byte[] dst)
    {
        var a = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(a, 1);          // Ethernet
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(2), 0x0800);
        a[4] = 6; a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(6), op);
        senderMac.CopyTo(a, 8); senderIp.CopyTo(a, 14); targetMac.CopyTo(a, 18); targetIp.CopyTo(a, 24);
        return Ethernet(dst, senderMac, 0x0806, a);
    }

    public static bool IsArp(byte[] f, ushort op) => f.Length >= 42 && f[12] == 8 && f[13] == 6 && BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(20)) == op;
    public static ReadOnlySpan<byte> ArpSenderMac(byte[] f) => f.AsSpan(22, 6);
    public static ReadOnlySpan<byte> ArpSenderIp(byte[] f) => f.AsSpan(28, 4);
    public static ReadOnlySpan<byte> ArpTargetIp(byte[] f) => f.AsSpan(38, 4);

    public static byte[] Udp(byte[] dstMac, byte[] srcMac, byte[] srcIp, byte[] dstIp, ushort srcPort, ushort dstPort, ReadOnlySpan<byte> data)
    {
        var ip = new byte[20 + 8 + data.Length];
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(2), (ushort)ip.Length);
        ip[8] = 64; ip[9] = 17;
        srcIp.CopyTo(ip, 12); dstIp.CopyTo(ip, 16);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(10), Checksum(ip.AsSpan(0, 20)));
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(20), srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(22), dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(24), (ushort)(8 + data.Length)); // checksum 0: none (IPv4)
        data.CopyTo(ip.AsSpan(28));
        return Ethernet(dstMac, srcMac, 0x0800, ip);
    }

    /// <summary>The payload of a UDP/IPv4 frame to <paramref name="port"/>, or null.</summary>
    public static byte[]? UdpPayload(byte[] f, ushort port)
    {
        if (f.Length < 42 || f[12] != 8 || f[13] != 0 || f[23] != 17) return null;
        var ihl = (f[14] & 15) * 4;
        var udp = 14 + ihl;
        if (BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(udp + 2)) != port) return null;
        var len = BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(udp + 4));
        return f.AsSpan(udp + 8, len - 8).ToArray();
    }

    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if ((data.Length & 1) != 0) sum += (uint)data[^1] << 8;
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }
}
