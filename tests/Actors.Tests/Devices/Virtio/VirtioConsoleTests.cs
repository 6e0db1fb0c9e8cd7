using System.Net.Sockets;
using Actorvisor.Actors.Devices.Virtio.Console;
using Actorvisor.Actors.Devices.Virtio.Queue;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

/// <summary>virtio-console with its port on a real UNIX socket, bytes both ways (virtio 1.2, 5.3).</summary>
public sealed class VirtioConsoleTests : IDisposable
{
    private readonly VirtioHarness _h = new();
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"vcon-{Guid.NewGuid():N}.sock");
    private readonly VirtioConsole _console;
    private readonly TestRing _rx, _tx;
    private readonly Socket _client;

    public VirtioConsoleTests()
    {
        var backend = new UnixSocketConsoleBackend(_path);
        _console = new VirtioConsole(backend);
        _rx = _h.Ring(0, 64);
        _tx = _h.Ring(1, 64);
        _h.Activate(_console, VirtioFeatures.QueueCore | VirtioConsole.FeatureEmergencyWrite, _rx, _tx);
        _client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _client.Connect(new UnixDomainSocketEndPoint(_path));
        _client.ReceiveTimeout = 5000;
        // Output is dropped while no client is connected, as on an unplugged line: wait for the accept.
        Assert.True(SpinWait.SpinUntil(() => backend.ClientConnected, 5000));
    }

    public void Dispose()
    {
        _client.Dispose();
        _console.Dispose();
        _h.Dispose();
        Assert.False(File.Exists(_path));
    }

    private byte[] ReceiveFromGuest(int count)
    {
        var got = new byte[count];
        var n = 0;
        while (n < count) n += _client.Receive(got, n, count - n, SocketFlags.None);
        return got;
    }

    [Fact]
    public void Configuration_reports_one_port()
    {
        Assert.Equal(3, _console.DeviceId);
        Assert.Equal(1, _console.ReadConfig(4));
        Assert.Equal(0, _console.ReadConfig(0));
    }

    [Fact]
    public void Guest_output_reaches_the_socket()
    {
        var a = _h.Put("hello, "u8);
        var b = _h.Put("host\n"u8);
        _tx.AddChain((a, 7, false), (b, 5, false));
        _console.Notify(VirtioConsole.TransmitQueue);
        Assert.Equal(1, _tx.UsedIdx);
        Assert.Equal(0u, _tx.UsedElem(0).Len);
        Assert.Equal("hello, host\n"u8.ToArray(), ReceiveFromGuest(12));
    }

    [Fact]
    public void Emergency_write_goes_straight_out()
    {
        _console.WriteConfig(8, (byte)'!');
        _console.WriteConfig(9, 0);
        Assert.Equal("!"u8.ToArray(), ReceiveFromGuest(1));
    }

    [Fact]
    public void Host_input_reaches_a_posted_receive_buffer()
    {
        var buf = _h.Alloc(64);
        _rx.AddChain((buf, 64, true));
        _console.Notify(VirtioConsole.ReceiveQueue);
        _client.Send("ls\n"u8);
        Assert.True(_h.Owner.RunUntil(() => _rx.UsedIdx == 1));
        Assert.Equal(3u, _rx.UsedElem(0).Len);
        Assert.Equal("ls\n"u8.ToArray(), _h.Get(buf, 3));
        Assert.True(_h.Signals.UsedCount(VirtioConsole.ReceiveQueue) >= 1);
    }

    [Fact]
    public void Input_sent_while_the_guest_posts_no_buffers_is_kept_and_delivered_in_order()
    {
        // More than the input queue holds: the socket reader must wait instead of dropping.
        var sent = new byte[3 * ConsoleInput.DefaultCapacity + 123];
        new Random(3).NextBytes(sent);
        var sender = Task.Run(() => _client.Send(sent));
        Assert.True(_h.Owner.RunUntil(() => _console.Input.Count >= ConsoleInput.DefaultCapacity));
        Thread.Sleep(100);
        _h.Owner.Drain();
        Assert.True(_console.Input.Count <= ConsoleInput.DefaultCapacity + 4096, $"input queue grew to {_console.Input.Count}");

        var received = new List<byte>();
        var index = 0;
        Assert.True(_h.Owner.RunUntil(() =>
        {
            // The guest posts small buffers one batch at a time, collecting as it goes.
            while (index < _rx.UsedIdx)
            {
                var (id, len) = _rx.UsedElem(index++);
                received.AddRange(_h.Get(0x200000 + 4096UL * id, (int)len));
            }
            if (received.Count >= sent.Length) return true;
            if (_rx.AvailIdx == _rx.UsedIdx)
            {
                for (var i = 0; i < 16; i++)
                {
                    var slot = (ushort)(_rx.AvailIdx % 64);
                    _rx.SetDesc(slot, 0x200000 + 4096UL * slot, 4096, 2);
                    _rx.Publish(slot);
                }
                _console.Notify(VirtioConsole.ReceiveQueue);
            }
            return false;
        }, 10000), $"received {received.Count} of {sent.Length}");
        Assert.Equal(sent, received.ToArray());
        Assert.True(sender.Wait(5000));
    }

    [Fact]
    public void Input_waits_across_a_reset_for_the_next_driver()
    {
        _console.Reset();
        _client.Send("boot"u8);
        Thread.Sleep(100);
        var rx = _h.Ring(2, 8);
        _h.Activate(_console, VirtioFeatures.QueueCore, rx, _h.Ring(3, 8));
        var buf = _h.Alloc(16);
        rx.AddChain((buf, 16, true));
        _console.Notify(VirtioConsole.ReceiveQueue);
        Assert.True(_h.Owner.RunUntil(() => rx.UsedIdx == 1));
        Assert.Equal("boot"u8.ToArray(), _h.Get(buf, 4));
    }
}
