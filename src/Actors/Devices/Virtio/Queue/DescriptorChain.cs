using Actorvisor.Kernel.Memory;

namespace Actorvisor.Actors.Devices.Virtio.Queue;

/// <summary>One guest buffer of a descriptor chain, already checked to lie wholly inside guest RAM.</summary>
public readonly record struct BufferSegment(ulong Address, uint Length);

/// <summary>
/// A validated descriptor chain (virtio 1.2, 2.7.5): its head index (the id the used ring reports) and its
/// device-readable and device-writable buffers in order. Every segment was checked against guest RAM when the
/// chain was taken, and each direction's total fits in 32 bits, so offsets and lengths here never overflow.
/// </summary>
public sealed class DescriptorChain
{
    private readonly List<BufferSegment> _readable = [];
    private readonly List<BufferSegment> _writable = [];

    public DescriptorChain(ushort head) => Head = head;

    public ushort Head { get; }
    public IReadOnlyList<BufferSegment> Readable => _readable;
    public IReadOnlyList<BufferSegment> Writable => _writable;
    public uint ReadableLength { get; private set; }
    public uint WritableLength { get; private set; }

    internal void AddReadable(BufferSegment s)
    {
        if (_writable.Count > 0)
            throw new VirtioProtocolException("a device-readable descriptor follows a device-writable one");
        if ((ulong)ReadableLength + s.Length > uint.MaxValue)
            throw new VirtioProtocolException("the readable lengths of a chain add up to more than 4 GiB");
        _readable.Add(s);
        ReadableLength += s.Length;
    }

    internal void AddWritable(BufferSegment s)
    {
        if ((ulong)WritableLength + s.Length > uint.MaxValue)
            throw new VirtioProtocolException("the writable lengths of a chain add up to more than 4 GiB");
        _writable.Add(s);
        WritableLength += s.Length;
    }

    /// <summary>Copies readable bytes from <paramref name="offset"/> on (across segments); returns how many were copied.</summary>
    public int ReadFrom(GuestMemory memory, uint offset, Span<byte> dest) => Copy(memory, _readable, offset, dest, default, write: false);

    /// <summary>Copies <paramref name="src"/> into the writable buffers from <paramref name="offset"/> on; returns how many bytes fit.</summary>
    public int WriteTo(GuestMemory memory, uint offset, ReadOnlySpan<byte> src) => Copy(memory, _writable, offset, default, src, write: true);

    /// <summary>All readable bytes, copied in (at most <paramref name="limit"/>; a longer chain is the caller's error to report).</summary>
    public byte[] ReadAll(GuestMemory memory, int limit = int.MaxValue)
    {
        var n = (int)Math.Min(ReadableLength, (uint)Math.Max(limit, 0));
        var buffer = new byte[n];
        ReadFrom(memory, 0, buffer);
        return buffer;
    }

    private static int Copy(GuestMemory memory, List<BufferSegment> segments, uint offset, Span<byte> dest, ReadOnlySpan<byte> src, bool write)
    {
        var remaining = write ? src.Length : dest.Length;
        var done = 0;
        ulong skip = offset;
        foreach (var s in segments)
        {
            if (remaining == 0) break;
            if (skip >= s.Length) { skip -= s.Length; continue; }
            var n = (int)Math.Min((ulong)remaining, s.Length - skip);
            var gpa = s.Address + skip;
            skip = 0;
            var ok = write ? memory.TryWrite(gpa, src.Slice(done, n)) : memory.TryRead(gpa, dest.Slice(done, n));
            // Checked when the chain was taken; RAM does not move, so this only fails on a bug, still not a host fault.
            if (!ok) throw new VirtioProtocolException($"buffer 0x{gpa:x}+{n} is not guest RAM");
            done += n;
            remaining -= n;
        }
        return done;
    }
}
