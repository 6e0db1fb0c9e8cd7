using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Actors.Devices.Virtio.Queue;

/// <summary>
/// The device side of one split virtqueue (virtio 1.2, section 2.7). Everything the driver supplies is treated as
/// hostile: the ring addresses are checked once against guest RAM, each descriptor is copied in before it is
/// looked at, an indirect table is copied in whole, and every index, length and address is validated before use.
/// A violation throws <see cref="VirtioProtocolException"/> (the device turns it into DEVICE_NEEDS_RESET); guest
/// memory is only ever touched through <see cref="GuestMemory"/>'s bounds-checked accessors.
/// The ring indices the driver and device share are read and written as aligned 16-bit atomics, with full fences
/// where the specification orders them against other accesses (2.7.13, 2.7.7.2).
/// </summary>
public sealed class Virtqueue
{
    public const ushort DescNext = 1, DescWrite = 2, DescIndirect = 4;
    public const ushort AvailNoInterrupt = 1;
    public const int DescriptorSize = 16;
    /// <summary>The largest split queue the specification allows.</summary>
    public const int MaxSize = 32768;
    /// <summary>An indirect table longer than the largest queue is refused (bounds the copy-in).</summary>
    public const int MaxIndirectEntries = MaxSize;

    private readonly GuestMemory _memory;
    private readonly bool _eventIdx;
    private readonly bool _indirect;
    private ushort _lastAvail;
    private ushort _used;
    /// <summary>The used index when the driver was last considered for an interrupt (the "old" of vring_need_event).</summary>
    private ushort _signalledUsed;

    private Virtqueue(GuestMemory memory, VirtqueueLayout layout, ulong features)
    {
        _memory = memory;
        Layout = layout;
        _eventIdx = (features & VirtioFeatures.EventIndex) != 0;
        _indirect = (features & VirtioFeatures.IndirectDescriptors) != 0;
    }

    public VirtqueueLayout Layout { get; }
    public ushort Size => Layout.Size;
    /// <summary>The next available-ring slot the device will take (2.7.6's last_avail_idx).</summary>
    public ushort LastAvailIndex => _lastAvail;
    public ushort UsedIndex => _used;

    /// <summary>Checks a layout the driver programmed; on success the rings lie wholly in guest RAM.</summary>
    public static bool TryCreate(GuestMemory memory, VirtqueueLayout layout, ushort maxSize, ulong features,
        out Virtqueue? queue, out string? error)
    {
        queue = null;
        error = Validate(memory, layout, maxSize, (features & VirtioFeatures.EventIndex) != 0);
        if (error is not null) return false;
        queue = new Virtqueue(memory, layout, features);
        return true;
    }

    private static string? Validate(GuestMemory memory, VirtqueueLayout l, ushort maxSize, bool eventIdx)
    {
        int size = l.Size;
        if (size == 0 || (size & (size - 1)) != 0) return $"queue size {size} is not a power of 2";
        if (size > maxSize || size > MaxSize) return $"queue size {size} exceeds the maximum {Math.Min((int)maxSize, MaxSize)}";
        var extra = eventIdx ? 2UL : 0UL;
        if ((l.DescriptorTable & 15) != 0) return $"descriptor table 0x{l.DescriptorTable:x} is not 16-byte aligned";
        if ((l.AvailableRing & 1) != 0) return $"available ring 0x{l.AvailableRing:x} is not 2-byte aligned";
        if ((l.UsedRing & 3) != 0) return $"used ring 0x{l.UsedRing:x} is not 4-byte aligned";
        if (!memory.IsRam(l.DescriptorTable, (ulong)size * DescriptorSize)) return $"descriptor table 0x{l.DescriptorTable:x} is not in guest RAM";
        if (!memory.IsRam(l.AvailableRing, 4 + 2UL * (ulong)size + extra)) return $"available ring 0x{l.AvailableRing:x} is not in guest RAM";
        if (!memory.IsRam(l.UsedRing, 4 + 8UL * (ulong)size + extra)) return $"used ring 0x{l.UsedRing:x} is not in guest RAM";
        return null;
    }

    /// <summary>
    /// Takes the next available chain, or returns null when the driver has made none available. With EVENT_IDX it
    /// then publishes avail_event and looks once more, so a buffer made available meanwhile is not missed.
    /// </summary>
    public DescriptorChain? Pop()
    {
        var availIdx = AvailableIndex();
        if (availIdx == _lastAvail)
        {
            if (!_eventIdx) return null;
            WriteU16(Layout.UsedRing + 4 + 8UL * Size, _lastAvail);
            Interlocked.MemoryBarrier();
            availIdx = AvailableIndex();
            if (availIdx == _lastAvail) return null;
        }
        var head = ReadU16(Layout.AvailableRing + 4 + 2UL * (ulong)(_lastAvail & (Size - 1)));
        _lastAvail++;
        if (head >= Size) throw new VirtioProtocolException($"available ring names descriptor {head}, queue size is {Size}");
        return Walk(head);
    }

    /// <summary>Gives back the chain just taken (a receive buffer too small for the frame waiting): the next Pop returns it again.</summary>
    public void Unpop() => _lastAvail--;

    /// <summary>Number of chains the driver has made available beyond those taken.</summary>
    public int Pending => (ushort)(AvailableIndex() - _lastAvail);

    private ushort AvailableIndex()
    {
        var idx = ReadU16(Layout.AvailableRing + 2);
        // The ring entries and descriptors the index covers are read after it (2.7.13: the driver's write barrier pairs with this).
        Interlocked.MemoryBarrier();
        if ((ushort)(idx - _lastAvail) > Size)
            throw new VirtioProtocolException($"available index {idx} is more than the queue size {Size} ahead of {_lastAvail}");
        return idx;
    }

    private DescriptorChain Walk(ushort head)
    {
        var chain = new DescriptorChain(head);
        Span<byte> raw = stackalloc byte[DescriptorSize];
        byte[]? table = null;
        int tableSize = Size, budget = Size, index = head;
        while (true)
        {
            if (budget-- == 0)
                throw new VirtioProtocolException($"chain from descriptor {head} is longer than its table ({tableSize} entries): a loop");
            if (table is null)
            {
                if (!_memory.TryRead(Layout.DescriptorTable + (ulong)index * DescriptorSize, raw))
                    throw new VirtioProtocolException("descriptor table is not in guest RAM");
            }
            else
            {
                table.AsSpan(index * DescriptorSize, DescriptorSize).CopyTo(raw);
            }
            var addr = BinaryPrimitives.ReadUInt64LittleEndian(raw);
            var len = BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]);
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(raw[12..]);
            var next = BinaryPrimitives.ReadUInt16LittleEndian(raw[14..]);

            if ((flags & DescIndirect) != 0)
            {
                if (!_indirect) throw new VirtioProtocolException("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
                if (table is not null) throw new VirtioProtocolException("indirect descriptor inside an indirect table");
                if ((flags & DescNext) != 0) throw new VirtioProtocolException("indirect descriptor with NEXT set");
                if (len == 0 || len % DescriptorSize != 0)
                    throw new VirtioProtocolException($"indirect table length {len} is not a non-zero multiple of 16");
                if (len / DescriptorSize > MaxIndirectEntries)
                    throw new VirtioProtocolException($"indirect table of {len / DescriptorSize} entries is longer than {MaxIndirectEntries}");
                table = new byte[len];
                // Copied in whole: the driver cannot change an entry between its check and its use.
                if (!_memory.TryRead(addr, table))
                    throw new VirtioProtocolException($"indirect table 0x{addr:x}+{len} is not in guest RAM");
                tableSize = budget = (int)(len / DescriptorSize);
                index = 0;
                continue;
            }

            if (len != 0)
            {
                if (!_memory.IsRam(addr, len))
                    throw new VirtioProtocolException($"buffer 0x{addr:x}+{len} is not in guest RAM");
                var segment = new BufferSegment(addr, len);
                if ((flags & DescWrite) != 0) chain.AddWritable(segment); else chain.AddReadable(segment);
            }
            if ((flags & DescNext) == 0) return chain;
            if (next >= tableSize)
                throw new VirtioProtocolException($"descriptor {index} links to {next}, its table has {tableSize} entries");
            index = next;
        }
    }

    /// <summary>Returns a chain to the driver with the number of bytes the device wrote into it (2.7.8).</summary>
    public void PushUsed(ushort head, uint written)
    {
        Span<byte> element = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(element, head);
        BinaryPrimitives.WriteUInt32LittleEndian(element[4..], written);
        if (!_memory.TryWrite(Layout.UsedRing + 4 + 8UL * (ulong)(_used & (Size - 1)), element))
            throw new VirtioProtocolException("used ring is not in guest RAM");
        // The element must be visible before the index that publishes it.
        Interlocked.MemoryBarrier();
        _used++;
        WriteU16(Layout.UsedRing + 2, _used);
    }

    /// <summary>
    /// Whether the driver wants a used buffer notification for what was pushed since the last call: the
    /// NO_INTERRUPT flag, or with EVENT_IDX whether used_event lies in the span just published (2.7.10).
    /// </summary>
    public bool NeedsNotification()
    {
        // Our used index write must be ordered before the read of the driver's suppression state.
        Interlocked.MemoryBarrier();
        var old = _signalledUsed;
        _signalledUsed = _used;
        if (old == _used) return false;
        if (_eventIdx)
        {
            var usedEvent = ReadU16(Layout.AvailableRing + 4 + 2UL * Size);
            return (ushort)(_used - usedEvent - 1) < (ushort)(_used - old);
        }
        return (ReadU16(Layout.AvailableRing) & AvailNoInterrupt) == 0;
    }

    // The shared ring fields are naturally aligned (checked in Validate), so these are single atomic accesses and a
    // concurrent driver update is never seen half-written.
    private ushort ReadU16(ulong gpa)
    {
        if (!_memory.TryGetSpan(gpa, 2, out var s)) throw new VirtioProtocolException($"ring field 0x{gpa:x} is not in guest RAM");
        return Volatile.Read(ref Unsafe.As<byte, ushort>(ref MemoryMarshal.GetReference(s)));
    }

    private void WriteU16(ulong gpa, ushort value)
    {
        if (!_memory.TryGetSpan(gpa, 2, out var s)) throw new VirtioProtocolException($"ring field 0x{gpa:x} is not in guest RAM");
        Volatile.Write(ref Unsafe.As<byte, ushort>(ref MemoryMarshal.GetReference(s)), value);
        _memory.NoteWrite(gpa, 2);
    }
}
