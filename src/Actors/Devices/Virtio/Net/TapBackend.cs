using System.Runtime.InteropServices;
using System.Text;
using Actorvisor.Actors.Devices.Virtio.HostIo;

namespace Actorvisor.Actors.Devices.Virtio.Net;

/// <summary>
/// A host TAP interface (/dev/net/tun with TUNSETIFF, IFF_TAP | IFF_NO_PI): frames written go out of the TAP into
/// the host's network stack; a reader thread polls for frames the host sends and hands them on. The interface lives
/// in the network namespace of the thread that opened it.
/// </summary>
public sealed unsafe class TapBackend : INetBackend
{
    private const ulong TUNSETIFF = 0x400454ca;
    private const short IFF_TAP = 0x0002, IFF_NO_PI = 0x1000;
    private const int IfNameSize = 16, IfReqSize = 40;
    private const int MaxFrame = 65536;

    private readonly int _fd;
    private volatile bool _disposed;
    private Thread? _reader;

    private TapBackend(int fd, string name)
    {
        _fd = fd;
        Name = name;
    }

    /// <summary>The interface name the kernel gave (the requested one, or one it chose from a pattern like "tap%d").</summary>
    public string Name { get; }

    /// <summary>
    /// Opens (creating if needed) the TAP interface <paramref name="name"/>; with <paramref name="netns"/> (a name under
    /// /var/run/netns, as `ip netns add` makes, or a path) inside that network namespace: the open runs on a thread
    /// of its own moved there, so the process's other threads stay where they are.
    /// </summary>
    public static TapBackend Open(string name, string? netns)
    {
        if (netns is null) return Open(name);
        var path = netns.Contains('/') ? netns : $"/var/run/netns/{netns}";
        TapBackend? tap = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var ns = File.OpenHandle(path);
                if (Libc.setns((int)ns.DangerousGetHandle(), Libc.CLONE_NEWNET) != 0)
                    throw new IOException($"cannot enter network namespace {path} (errno {Marshal.GetLastPInvokeError()})");
                tap = Open(name);
            }
            catch (Exception e) { error = e; }
        }) { Name = "tap open in netns" };
        thread.Start();
        thread.Join();
        if (error is not null) throw error is IOException ? error : new IOException(error.Message, error);
        return tap!;
    }

    public static TapBackend Open(string name)
    {
        var nameBytes = Encoding.ASCII.GetBytes(name);
        if (nameBytes.Length == 0 || nameBytes.Length >= IfNameSize) throw new ArgumentException($"bad TAP interface name '{name}'", nameof(name));
        var fd = Libc.open("/dev/net/tun", Libc.O_RDWR | Libc.O_CLOEXEC);
        if (fd < 0) throw new IOException($"cannot open /dev/net/tun (errno {Marshal.GetLastPInvokeError()})");
        var ifr = stackalloc byte[IfReqSize];
        new Span<byte>(ifr, IfReqSize).Clear();
        nameBytes.CopyTo(new Span<byte>(ifr, IfNameSize));
        *(short*)(ifr + IfNameSize) = IFF_TAP | IFF_NO_PI;
        if (Libc.ioctl(fd, TUNSETIFF, ifr) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            Libc.close(fd);
            throw new IOException($"TUNSETIFF {name} failed (errno {errno}; root or CAP_NET_ADMIN is needed)");
        }
        var actual = new ReadOnlySpan<byte>(ifr, IfNameSize);
        var end = actual.IndexOf((byte)0);
        return new TapBackend(fd, Encoding.ASCII.GetString(end < 0 ? actual : actual[..end]));
    }

    public void Start(Action<byte[]> receive)
    {
        _reader = new Thread(() => Read(receive)) { IsBackground = true, Name = $"tap {Name}" };
        _reader.Start();
    }

    private void Read(Action<byte[]> receive)
    {
        var buffer = new byte[MaxFrame];
        var pfd = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
        while (!_disposed)
        {
            // A timeout, so Dispose never waits on a read that no frame will end.
            if (Libc.poll(&pfd, 1, 200) <= 0) continue;
            nint n;
            fixed (byte* p = buffer) n = Libc.read(_fd, p, (nuint)buffer.Length);
            if (n > 0) receive(buffer.AsSpan(0, (int)n).ToArray());
            else if (n < 0 && Marshal.GetLastPInvokeError() is not (Libc.EINTR or Libc.EAGAIN)) return;
        }
    }

    /// <summary>Frames the TAP refused (the interface is down, or the host is out of buffers); such frames are lost, as on a wire.</summary>
    public long SendErrors { get; private set; }

    public void Send(ReadOnlySpan<byte> frame)
    {
        if (_disposed) return;
        fixed (byte* p = frame)
            if (Libc.write(_fd, p, (nuint)frame.Length) < 0) SendErrors++;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _reader?.Join(TimeSpan.FromSeconds(2));
        Libc.close(_fd);
    }
}
