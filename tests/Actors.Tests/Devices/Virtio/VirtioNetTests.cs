using Actorvisor.Actors.Devices.Virtio.Net;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

/// <summary>virtio-net (virtio 1.2, 5.1) through the in-process switch.</summary>
public sealed class VirtioNetTests : IDisposable
{
    private static readonly byte[] MacA = [0x52, 0x54, 0, 0, 0, 0xa], MacB = [0x52, 0x54, 0, 0, 0, 0xb], MacC = [0x52, 0x54, 0, 0, 0, 0xc];
    private readonly NetSwitch _switch = new();
    private readonly NetTestDriver _a, _b, _c;

    public VirtioNetTests()
    {
        _a = new NetTestDriver(MacA, _switch.CreatePort());
        _b = new NetTestDriver(MacB, _switch.CreatePort());
        _c = new NetTestDriver(MacC, _switch.CreatePort());
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
        _c.Dispose();
        Assert.Equal(0, _switch.PortCount);
    }

    [Fact]
    public void Configuration_holds_the_mac_and_link_up()
    {
        Assert.Equal(1, _a.Device.DeviceId);
        Assert.Equal(MacA, Enumerable.Range(0, 6).Select(i => _a.Device.ReadConfig(i)).ToArray());
        Assert.Equal(VirtioNet.StatusLinkUp, _a.Device.ReadConfig(6));
        Assert.NotEqual(0UL, _a.Device.OfferedFeatures & VirtioNet.FeatureMac);
        Assert.NotEqual(0UL, _a.Device.OfferedFeatures & VirtioNet.FeatureStatus);
    }

    [Fact]
    public void Broadcast_floods_and_learned_unicast_goes_to_one_port()
    {
        _a.PostReceiveBuffers();
        _b.PostReceiveBuffers();
        _c.PostReceiveBuffers();

        var hello = Frames.Ethernet(Frames.Broadcast, MacA, 0x88b5, "hello from a"u8);
        _a.Send(hello);
        Assert.Equal(hello, _b.WaitFor(_ => true));
        Assert.Equal(hello, _c.WaitFor(_ => true));
        Assert.Empty(_a.Take()); // not back to its sender

        // The switch learnt A's port, so B's reply reaches A only; B is learnt from it too.
        var reply = Frames.Ethernet(MacA, MacB, 0x88b5, "reply from b"u8);
        _b.Send(reply);
        Assert.Equal(reply, _a.WaitFor(_ => true));
        var toB = Frames.Ethernet(MacB, MacA, 0x88b5, "unicast to b"u8);
        _a.Send(toB);
        Assert.Equal(toB, _b.WaitFor(_ => true));
        Thread.Sleep(50);
        Assert.Empty(_c.Take());
        Assert.Equal(2, _a.Device.TxFrames);
    }

    [Fact]
    public void Frames_wait_for_receive_buffers()
    {
        _b.Send(Frames.Ethernet(Frames.Broadcast, MacB, 0x88b5, "early 1"u8));
        _b.Send(Frames.Ethernet(Frames.Broadcast, MacB, 0x88b5, "early 2"u8));
        _a.Harness.Owner.Drain();
        Assert.Empty(_a.Take());
        _a.PostReceiveBuffers();
        var got = new List<byte[]>();
        _a.Harness.Owner.RunUntil(() => { got.AddRange(_a.Take()); return got.Count == 2; });
        Assert.Equal(2, got.Count);
        Assert.Equal("early 1"u8.ToArray(), got[0].AsSpan(14, 7).ToArray());
        Assert.Equal("early 2"u8.ToArray(), got[1].AsSpan(14, 7).ToArray());
    }

    [Fact]
    public void A_frame_too_big_for_the_buffer_is_dropped_and_the_buffer_kept()
    {
        _a.PostReceiveBuffers(1, size: 100);
        var big = Frames.Ethernet(Frames.Broadcast, MacB, 0x88b5, new byte[200]);
        var small = Frames.Ethernet(Frames.Broadcast, MacB, 0x88b5, "fits"u8);
        _b.Send(big);
        _b.Send(small);
        Assert.Equal(small, _a.WaitFor(_ => true));
        Assert.Equal(1, _a.Device.RxDropped);
        Assert.Equal(1, _a.Rx.UsedIdx);
    }

    [Fact]
    public void Runt_transmits_are_dropped_without_breaking_the_device()
    {
        _a.Send(new byte[5]);
        Assert.Equal(1, _a.Device.TxDropped);
        Assert.True(_a.Device.IsLive);
    }

    [Fact]
    public void The_pending_receive_queue_is_bounded()
    {
        for (var i = 0; i < VirtioNet.MaxPendingFrames + 10; i++)
            _b.Send(Frames.Ethernet(MacA, MacB, 0x88b5, [(byte)i]));
        _a.Harness.Owner.Drain();
        Assert.Equal(10, _a.Device.RxDropped);
    }
}
