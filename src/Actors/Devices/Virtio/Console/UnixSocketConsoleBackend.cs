using System.Collections.Concurrent;
using System.Net.Sockets;

namespace Actorvisor.Actors.Devices.Virtio.Console;

/// <summary>
/// A console port on a UNIX stream socket: the device listens at a path and serves one client at a time (the next
/// one after it leaves). Input is read only while the device's input queue has room; output goes through a bounded
/// queue to a writer thread, and is dropped while no client is connected or when the client stops reading.
/// </summary>
public sealed class UnixSocketConsoleBackend : IConsoleBackend
{
    private const int OutputQueueChunks = 4096;

    private readonly Socket _listener;
    private readonly BlockingCollection<byte[]> _output = new(OutputQueueChunks);
    private volatile Socket? _client;
    private volatile bool _disposed;
    private ConsoleInput? _input;
    private Thread? _reader, _writer;

    public UnixSocketConsoleBackend(string path)
    {
        Path = path;
        if (File.Exists(path)) File.Delete(path); // a stale socket from an earlier run
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        _listener.Listen(1);
    }

    public string Path { get; }
    public bool ClientConnected => _client is not null;

    public void Start(ConsoleInput input)
    {
        _input = input;
        _reader = new Thread(AcceptAndRead) { IsBackground = true, Name = "virtio-console socket" };
        _writer = new Thread(WriteOut) { IsBackground = true, Name = "virtio-console output" };
        _reader.Start();
        _writer.Start();
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        if (_client is null || _disposed || data.IsEmpty) return;
        _output.TryAdd(data.ToArray());
    }

    private void AcceptAndRead()
    {
        var buffer = new byte[4096];
        while (!_disposed)
        {
            Socket client;
            try { client = _listener.Accept(); }
            catch (Exception) { return; } // listener closed
            _client = client;
            try
            {
                while (!_disposed && _input!.WaitForRoom())
                {
                    var room = Math.Max(1, Math.Min(buffer.Length, _input.Capacity - _input.Count));
                    var n = client.Receive(buffer, 0, room, SocketFlags.None);
                    if (n == 0) break;
                    _input.Push(buffer.AsSpan(0, n));
                }
            }
            catch (Exception) { } // the client went away
            _client = null;
            client.Dispose();
        }
    }

    private void WriteOut()
    {
        try
        {
            foreach (var chunk in _output.GetConsumingEnumerable())
            {
                try { _client?.Send(chunk); }
                catch (Exception) { } // the reader notices the disconnect
            }
        }
        catch (ObjectDisposedException) { }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _input?.Close();
        _output.CompleteAdding();
        try { _client?.Shutdown(SocketShutdown.Both); } catch (Exception) { }
        _listener.Dispose();
        _reader?.Join(TimeSpan.FromSeconds(2));
        _writer?.Join(TimeSpan.FromSeconds(2));
        _client?.Dispose();
        try { File.Delete(Path); } catch (Exception) { }
    }
}
