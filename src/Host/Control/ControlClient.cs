using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Actorvisor.Host.Control;

/// <summary>A control-socket connection: reads the hello, then sends requests and reads their responses, one line each.</summary>
public sealed class ControlClient : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;
    private int _nextId = 1;

    public JsonObject Hello { get; }

    private ControlClient(Socket socket, TimeSpan timeout)
    {
        _socket = socket;
        _socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(_stream, new UTF8Encoding(false));
        Hello = ReadObject() ?? throw new IOException("the VM closed the connection before its hello");
        if (Hello["protocol"]?.GetValue<int>() is not ControlProtocol.Version)
            throw new IOException($"the VM speaks control protocol {Hello["protocol"]}, this client {ControlProtocol.Version}");
    }

    /// <summary>Connects; a SocketException means nothing listens there (a stale socket, or none).</summary>
    public static ControlClient Connect(string path, TimeSpan? timeout = null)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return new ControlClient(socket, timeout ?? TimeSpan.FromSeconds(30));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Whether a live server accepts connections at <paramref name="path"/> (a refused connect: a stale socket).</summary>
    public static bool Answers(string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Sends a request (its id is set here) and returns the response.</summary>
    public JsonObject Request(JsonObject request)
    {
        request["id"] = _nextId++;
        SendRaw(request.ToJsonString());
        return ReadObject() ?? throw new IOException("the VM closed the connection without answering");
    }

    /// <summary>Sends one raw line (tests send malformed ones) and returns the next response, or null if the connection closed.</summary>
    public JsonObject? SendRaw(string line, bool read = false)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        _stream.Write(bytes);
        return read ? ReadObject() : null;
    }

    public JsonObject? ReadObject()
    {
        var line = _reader.ReadLine();
        if (line is null) return null;
        try
        {
            return JsonNode.Parse(line) as JsonObject ?? throw new IOException($"the VM sent something other than an object: {line}");
        }
        catch (JsonException e)
        {
            throw new IOException($"the VM sent malformed JSON: {e.Message}");
        }
    }

    public void Dispose()
    {
        _reader.Dispose();
        _stream.Dispose();
        _socket.Dispose();
    }
}
