using Actorvisor.Actors.Devices.Virtio;
using Actorvisor.Actors.Devices.Virtio.Queue;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

/// <summary>The split virtqueue core against virtio 1.2 section 2.7, well-formed and malformed.</summary>
public sealed class VirtqueueTests : IDisposable
{
    private const ulong All = VirtioFeatures.QueueCore;
    private const ushort Next = Virtqueue.DescNext, Write = Virtqueue.DescWrite, Indirect = Virtqueue.DescIndirect;
    private readonly VirtioHarness _h = new();

    public void Dispose() => _h.Dispose();

    private Virtqueue Create(TestRing ring, ulong features = All, ushort max = 256)
    {
        Assert.True(Virtqueue.TryCreate(_h.Memory, ring.Layout, max, features, out var q, out var error), error);
        return q!;
    }

    private static string Broken(Virtqueue q) => Assert.Throws<VirtioProtocolException>(() => q.Pop()).Message;

    [Theory]
    [InlineData(0, "power of 2")]
    [InlineData(3, "power of 2")]
    [InlineData(100, "power of 2")]
    [InlineData(512, "exceeds")]
    public void Bad_queue_sizes_are_refused(int size, string reason)
    {
        var ring = _h.Ring(0, 8);
        var layout = ring.Layout with { Size = (ushort)size };
        Assert.False(Virtqueue.TryCreate(_h.Memory, layout, 256, All, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Fact]
    public void Rings_outside_ram_or_misaligned_are_refused()
    {
        var ring = _h.Ring(0, 8);
        var top = _h.Memory.TopOfRam;
        foreach (var (layout, reason) in new[]
        {
            (ring.Layout with { DescriptorTable = top - 64 }, "descriptor table"),
            (ring.Layout with { AvailableRing = top - 4 }, "available ring"),
            (ring.Layout with { UsedRing = ulong.MaxValue - 3 }, "used ring"),
            (ring.Layout with { DescriptorTable = ring.Desc + 8 }, "aligned"),
            (ring.Layout with { AvailableRing = ring.Avail + 1 }, "aligned"),
            (ring.Layout with { UsedRing = ring.Used + 2 }, "aligned"),
        })
        {
            Assert.False(Virtqueue.TryCreate(_h.Memory, layout, 256, All, out _, out var error));
            Assert.Contains(reason, error);
        }
    }

    [Fact]
    public void A_chain_splits_into_readable_then_writable_segments()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        Assert.Null(q.Pop());
        var head = ring.AddChain((0x100000, 16, false), (0x100100, 100, false), (0x100200, 512, true), (0x100400, 1, true));
        var chain = q.Pop()!;
        Assert.Equal(head, chain.Head);
        Assert.Equal([new BufferSegment(0x100000, 16), new BufferSegment(0x100100, 100)], chain.Readable);
        Assert.Equal([new BufferSegment(0x100200, 512), new BufferSegment(0x100400, 1)], chain.Writable);
        Assert.Equal(116u, chain.ReadableLength);
        Assert.Equal(513u, chain.WritableLength);
        Assert.Null(q.Pop());
    }

    [Fact]
    public void Copies_cross_segment_boundaries_at_any_offset()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        var a = _h.Put([1, 2, 3]);
        var b = _h.Put([4, 5, 6, 7]);
        var w1 = _h.Alloc(2);
        var w2 = _h.Alloc(5);
        ring.AddChain((a, 3, false), (b, 4, false), (w1, 2, true), (w2, 5, true));
        var chain = q.Pop()!;
        var got = new byte[5];
        Assert.Equal(5, chain.ReadFrom(_h.Memory, 1, got));
        Assert.Equal(new byte[] { 2, 3, 4, 5, 6 }, got);
        Assert.Equal(2, chain.ReadFrom(_h.Memory, 5, got));
        Assert.Equal(6, chain.WriteTo(_h.Memory, 1, new byte[] { 9, 8, 7, 6, 5, 4, 3 }));
        Assert.Equal(new byte[] { 0, 9 }, _h.Get(w1, 2));
        Assert.Equal(new byte[] { 8, 7, 6, 5, 4 }, _h.Get(w2, 5));
    }

    [Fact]
    public void Used_elements_and_index_follow_the_pushes_and_wrap()
    {
        var ring = _h.Ring(0, 4);
        var q = Create(ring);
        for (var i = 0; i < 10; i++)
        {
            var head = ring.AddChain((0x100000, 8, true));
            var chain = q.Pop()!;
            q.PushUsed(chain.Head, (uint)(100 + i));
            Assert.Equal((ushort)(i + 1), ring.UsedIdx);
            Assert.Equal((head, (uint)(100 + i)), ring.UsedElem(i));
        }
    }

    [Fact]
    public void Zero_length_descriptors_add_no_segment()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.AddChain((0x100000, 0, false), (0x200000, 4, true));
        var chain = q.Pop()!;
        Assert.Empty(chain.Readable);
        Assert.Single(chain.Writable);
    }

    [Fact]
    public void A_loop_in_the_table_is_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.SetDesc(0, 0x100000, 4, Next, 1);
        ring.SetDesc(1, 0x100000, 4, Next, 0);
        ring.Publish(0);
        Assert.Contains("loop", Broken(q));
    }

    [Fact]
    public void A_descriptor_linking_to_itself_is_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.SetDesc(5, 0x100000, 4, Next, 5);
        ring.Publish(5);
        Assert.Contains("loop", Broken(q));
    }

    [Fact]
    public void A_head_beyond_the_queue_is_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.Publish(8);
        Assert.Contains("descriptor 8", Broken(q));
    }

    [Fact]
    public void A_next_index_beyond_the_queue_is_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.SetDesc(0, 0x100000, 4, Next, 0xffff);
        ring.Publish(0);
        Assert.Contains("links to 65535", Broken(q));
    }

    [Theory]
    [InlineData(0x400000UL - 8, 16u)]          // runs off the end of RAM
    [InlineData(0x400000UL, 1u)]               // just past it
    [InlineData(0xFFFF_FFFF_FFFF_FFF0UL, 0x100u)] // address + length wraps around
    [InlineData(0xFEC0_0000UL, 4u)]            // MMIO, not RAM
    public void A_buffer_outside_guest_ram_is_caught(ulong addr, uint len)
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.AddChain((addr, len, true));
        Assert.Contains("not in guest RAM", Broken(q));
    }

    [Fact]
    public void An_oversized_length_is_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.AddChain((0x100000, uint.MaxValue, false));
        Assert.Contains("not in guest RAM", Broken(q));
    }

    [Fact]
    public void The_available_index_may_not_run_more_than_a_queue_ahead()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.AvailIdx = 9;
        Assert.Contains("more than the queue size", Broken(q));
        var q2 = Create(ring);
        ring.AvailIdx = 0xfff0; // "negative"
        Assert.Contains("more than the queue size", Broken(q2));
    }

    [Fact]
    public void A_full_queue_of_available_chains_is_fine()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        for (var i = 0; i < 8; i++) ring.AddChain((0x100000, 4, true));
        for (var i = 0; i < 8; i++) Assert.NotNull(q.Pop());
        Assert.Null(q.Pop());
    }

    [Fact]
    public void A_readable_descriptor_after_a_writable_one_is_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.AddChain((0x100000, 4, true), (0x100100, 4, false));
        Assert.Contains("readable descriptor follows", Broken(q));
    }

    private ulong IndirectTable(params (ulong Addr, uint Len, ushort Flags, ushort Next)[] entries)
    {
        var table = _h.Alloc(16 * entries.Length);
        for (var i = 0; i < entries.Length; i++)
            TestRing.WriteDesc(_h.Memory, table + 16UL * (ulong)i, entries[i].Addr, entries[i].Len, entries[i].Flags, entries[i].Next);
        return table;
    }

    [Fact]
    public void An_indirect_table_is_walked_in_its_own_index_space()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        var table = IndirectTable((0x100000, 16, Next, 2), (0, 0, 0, 0), (0x100100, 8, Next | Write, 1), (0x100200, 1, Write, 0));
        // table[1] is reached from table[2], after a writable one: it must be writable too, so fix it.
        TestRing.WriteDesc(_h.Memory, table + 16, 0x100300, 2, Write, 0);
        ring.SetDesc(3, table, 64, Indirect);
        ring.Publish(3);
        var chain = q.Pop()!;
        Assert.Equal(3, chain.Head);
        Assert.Equal([new BufferSegment(0x100000, 16)], chain.Readable);
        Assert.Equal([new BufferSegment(0x100100, 8), new BufferSegment(0x100300, 2)], chain.Writable);
    }

    [Fact]
    public void A_direct_chain_may_end_in_an_indirect_table()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        var table = IndirectTable((0x100200, 4, Write, 0));
        ring.SetDesc(0, 0x100000, 16, Next, 1);
        ring.SetDesc(1, table, 16, Indirect);
        ring.Publish(0);
        var chain = q.Pop()!;
        Assert.Single(chain.Readable);
        Assert.Single(chain.Writable);
    }

    [Fact]
    public void Indirect_descriptors_need_the_feature()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring, All & ~VirtioFeatures.IndirectDescriptors);
        ring.SetDesc(0, IndirectTable((0x100000, 4, 0, 0)), 16, Indirect);
        ring.Publish(0);
        Assert.Contains("without VIRTIO_F_INDIRECT_DESC", Broken(q));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(8u)]
    [InlineData(24u)]
    public void Indirect_table_lengths_must_be_a_non_zero_multiple_of_16(uint len)
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.SetDesc(0, IndirectTable((0x100000, 4, 0, 0), (0x100000, 4, 0, 0)), len, Indirect);
        ring.Publish(0);
        Assert.Contains("multiple of 16", Broken(q));
    }

    [Fact]
    public void Nested_indirect_tables_are_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        var inner = IndirectTable((0x100000, 4, 0, 0));
        ring.SetDesc(0, IndirectTable((inner, 16, Indirect, 0)), 16, Indirect);
        ring.Publish(0);
        Assert.Contains("inside an indirect table", Broken(q));
    }

    [Fact]
    public void An_indirect_descriptor_with_next_is_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.SetDesc(0, IndirectTable((0x100000, 4, 0, 0)), 16, Indirect | Next, 1);
        ring.SetDesc(1, 0x100000, 4);
        ring.Publish(0);
        Assert.Contains("with NEXT", Broken(q));
    }

    [Fact]
    public void An_indirect_table_outside_ram_is_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.SetDesc(0, _h.Memory.TopOfRam - 16, 32, Indirect);
        ring.Publish(0);
        Assert.Contains("indirect table", Broken(q));
    }

    [Fact]
    public void Loops_and_bad_links_inside_an_indirect_table_are_caught()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.SetDesc(0, IndirectTable((0x100000, 4, Next, 1), (0x100000, 4, Next, 0)), 32, Indirect);
        ring.Publish(0);
        Assert.Contains("loop", Broken(q));

        var q2 = Create(_h.Ring(1, 8));
        var ring2 = _h.Ring(1, 8);
        ring2.SetDesc(0, IndirectTable((0x100000, 4, Next, 2), (0x100000, 4, 0, 0)), 32, Indirect);
        ring2.Publish(0);
        Assert.Contains("links to 2", Broken(q2));
    }

    [Fact]
    public void Lengths_adding_up_beyond_4_GiB_are_caught()
    {
        // 4100 entries of 1 MiB each, all over the same RAM: each is valid, their sum is not.
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        const int entries = 4100;
        var table = _h.Alloc(16 * entries);
        for (var i = 0; i < entries; i++)
            TestRing.WriteDesc(_h.Memory, table + 16UL * (ulong)i, 0x200000, 1 << 20, (ushort)(Write | (i < entries - 1 ? Next : 0)), (ushort)(i + 1));
        ring.SetDesc(0, table, 16 * entries, Indirect);
        ring.Publish(0);
        Assert.Contains("more than 4 GiB", Broken(q));
    }

    [Fact]
    public void Without_event_index_no_interrupt_suppresses_notifications()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring, VirtioFeatures.Version1);
        Assert.False(q.NeedsNotification()); // nothing pushed
        ring.AddChain((0x100000, 4, true));
        q.PushUsed(q.Pop()!.Head, 0);
        Assert.True(q.NeedsNotification());
        ring.AvailFlags = Virtqueue.AvailNoInterrupt;
        ring.AddChain((0x100000, 4, true));
        q.PushUsed(q.Pop()!.Head, 0);
        Assert.False(q.NeedsNotification());
    }

    [Fact]
    public void With_event_index_the_driver_is_notified_only_when_used_event_is_crossed()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        ring.UsedEvent = 2; // notify when used idx passes 2, i.e. becomes 3
        for (var i = 1; i <= 4; i++)
        {
            ring.AddChain((0x100000, 4, true));
            q.PushUsed(q.Pop()!.Head, 0);
            Assert.Equal(i == 3, q.NeedsNotification());
        }
        // Two pushes at once that jump over used_event still notify once.
        ring.UsedEvent = 4;
        for (var i = 0; i < 2; i++)
        {
            ring.AddChain((0x100000, 4, true));
            q.PushUsed(q.Pop()!.Head, 0);
        }
        Assert.True(q.NeedsNotification());
    }

    [Fact]
    public void With_event_index_an_empty_queue_publishes_avail_event()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        for (var i = 0; i < 3; i++) ring.AddChain((0x100000, 4, true));
        while (q.Pop() is not null) { }
        Assert.Equal(3, ring.AvailEvent);
    }

    [Fact]
    public void Unpop_gives_the_same_chain_again()
    {
        var ring = _h.Ring(0, 8);
        var q = Create(ring);
        var head = ring.AddChain((0x100000, 4, true));
        Assert.Equal(head, q.Pop()!.Head);
        q.Unpop();
        Assert.Equal(head, q.Pop()!.Head);
        Assert.Null(q.Pop());
    }
}
