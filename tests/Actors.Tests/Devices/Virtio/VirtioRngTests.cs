using Actorvisor.Actors.Devices.Virtio.Queue;
using Actorvisor.Actors.Devices.Virtio.Rng;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

public sealed class VirtioRngTests : IDisposable
{
    private readonly VirtioHarness _h = new();
    private readonly VirtioRng _rng = new();

    public void Dispose()
    {
        _rng.Dispose();
        _h.Dispose();
    }

    [Fact]
    public void Identifies_as_an_entropy_device_without_configuration()
    {
        Assert.Equal(4, _rng.DeviceId);
        Assert.Equal(1, _rng.QueueCount);
        Assert.Equal(0, _rng.ConfigSize);
        Assert.Equal(VirtioFeatures.QueueCore, _rng.OfferedFeatures);
    }

    [Fact]
    public void Fills_writable_buffers_with_fresh_random_bytes()
    {
        var ring = _h.Ring(0, 8);
        _h.Activate(_rng, VirtioFeatures.QueueCore, ring);
        var a = _h.Alloc(100);
        var b = _h.Alloc(28);
        var c = _h.Alloc(128);
        ring.AddChain((a, 100, true), (b, 28, true));
        ring.AddChain((c, 128, true));
        _rng.Notify(0);

        Assert.Equal(2, ring.UsedIdx);
        Assert.Equal(128u, ring.UsedElem(0).Len);
        Assert.Equal(128u, ring.UsedElem(1).Len);
        var first = _h.Get(a, 100).Concat(_h.Get(b, 28)).ToArray();
        var second = _h.Get(c, 128);
        Assert.NotEqual(first, second);
        // 128 random bytes: far more than 32 distinct values, and not all zero.
        Assert.True(first.Distinct().Count() > 32);
        Assert.True(second.Distinct().Count() > 32);
        Assert.Equal(1, _h.Signals.UsedCount(0));
    }

    [Fact]
    public void A_huge_request_is_answered_with_at_most_64_KiB()
    {
        var ring = _h.Ring(0, 8);
        _h.Activate(_rng, VirtioFeatures.QueueCore, ring);
        var big = _h.Alloc(1 << 20);
        ring.AddChain((big, 1 << 20, true));
        _rng.Notify(0);
        Assert.Equal((uint)VirtioRng.MaxBytesPerRequest, ring.UsedElem(0).Len);
        Assert.All(_h.Get(big + VirtioRng.MaxBytesPerRequest, 4096), x => Assert.Equal(0, x));
    }

    [Fact]
    public void A_broken_chain_makes_the_device_ask_for_a_reset_and_stop()
    {
        var ring = _h.Ring(0, 8);
        _h.Activate(_rng, VirtioFeatures.QueueCore, ring);
        ring.SetDesc(0, 0x100000, 4, Virtqueue.DescNext | Virtqueue.DescWrite, 0);
        ring.Publish(0);
        _rng.Notify(0);
        Assert.Contains("loop", Assert.Single(_h.Signals.Resets));
        Assert.True(_rng.IsBroken);

        // Further notifications are ignored until the driver resets the device.
        ring.AddChain((0x100000, 4, true));
        _rng.Notify(0);
        Assert.Equal(0, ring.UsedIdx);
        Assert.Single(_h.Signals.Resets);

        _rng.Reset();
        var fresh = _h.Ring(1, 8);
        _h.Activate(_rng, VirtioFeatures.QueueCore, fresh);
        fresh.AddChain((0x100000, 16, true));
        _rng.Notify(0);
        Assert.Equal(1, fresh.UsedIdx);
    }

    [Fact]
    public void A_bad_ring_layout_at_driver_ok_breaks_the_device()
    {
        var ring = _h.Ring(0, 8);
        _h.Activate(_rng, VirtioFeatures.QueueCore, new TestRing(_h.Memory, _h.Memory.TopOfRam - 16, 8));
        Assert.Contains("not in guest RAM", Assert.Single(_h.Signals.Resets));
        ring.AddChain((0x100000, 4, true));
        _rng.Notify(0); // ignored, no exception
        Assert.False(_rng.IsLive);
    }
}
