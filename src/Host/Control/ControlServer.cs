using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Actorvisor.Host.Vm;

namespace Actorvisor.Host.Control;

/// <summary>A control socket could not be opened (another VM of that name runs, the directory is not writable).</summary>
public sealed class ControlSocketException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// One VM's control socket: a UNIX stream socket at <c>DIR/NAME.sock</c> (mode 0600) serving
/// <see cref="ControlProtocol"/>. Each connection is served on its own task; a request goes to the VM's
/// current supervisor (<see cref="VmRun.Current"/>) and its <see cref="VmControl.Reply"/> comes back as one
/// line. A bad request (malformed JSON, unknown verb, bad argument) gets an error response and the
/// connection stays open; an oversized line gets one and the connection is closed; a client that goes away
/// mid-request costs nothing but the dropped answer. Disposing closes every connection and removes the socket.
/// </summary>
public sealed class ControlServer : IDisposable
{
    /// <summary>How long a request may wait for the VM (a suspend waits for every vCPU).</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(15);

    private readonly VmRun _run;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _closing = new();
    private readonly ConcurrentDictionary<Socket, byte> _clients = new();
    /// <summary>Requests received whose answers are not yet sent.</summary>
    private int _answering;
    private readonly Task _accepting;

    public string Path { get; }

    private ControlServer(VmRun run, Socket listener, string path)
    {
        _run = run;
        _listener = listener;
        Path = path;
        _accepting = Task.Run(AcceptLoop);
    }

    /// <summary>Opens the socket for <paramref name="run"/> in <paramref name="directory"/>; a stale socket of a dead process is replaced.</summary>
    public static ControlServer Start(VmRun run, string directory)
    {
        var path = ControlPaths.Socket(directory, run.Name);
        try
        {
            ControlPaths.EnsureDirectory(directory);
            if (File.Exists(path))
            {
                if (ControlClient.Answers(path))
                    throw new ControlSocketException($"a VM named '{run.Name}' is already running (its control socket {path} answers)");
                File.Delete(path);
            }
            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                listener.Bind(new UnixDomainSocketEndPoint(path));
                // The directory is 0700 already; the socket itself is the owner's only, as the issue asks.
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                listener.Listen(16);
            }
            catch
            {
                listener.Dispose();
                throw;
            }
            return new ControlServer(run, listener, path);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            throw new ControlSocketException($"cannot open the control socket {path}: {e.Message}", e);
        }
    }

    private async Task AcceptLoop()
    {
        while (!_closing.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_closing.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _clients[client] = 0;
            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(Socket client)
    {
        try
        {
            await using var stream = new NetworkStream(client, ownsSocket: false);
            await Send(stream, ControlProtocol.Hello(_run.Name));
            var buffer = new byte[4096];
            var line = new MemoryStream();
            while (!_closing.IsCancellationRequested)
            {
                var n = await stream.ReadAsync(buffer, _closing.Token);
                if (n == 0) return;
                var start = 0;
                for (var i = 0; i < n; i++)
                {
                    if (buffer[i] != (byte)'\n') continue;
                    if (line.Length + (i - start) > ControlProtocol.MaxLineBytes) break;
                    line.Write(buffer, start, i - start);
                    start = i + 1;
                    var text = Encoding.UTF8.GetString(line.GetBuffer(), 0, (int)line.Length);
                    line.SetLength(0);
                    if (text.Trim().Length == 0) continue;
                    Interlocked.Increment(ref _answering);
                    try
                    {
                        await Send(stream, await Handle(text));
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _answering);
                    }
                }
                if (line.Length + (n - start) > ControlProtocol.MaxLineBytes)
                {
                    await Send(stream, ControlProtocol.Response(null, VmControl.Reply.Fail(
                        $"request longer than {ControlProtocol.MaxLineBytes} bytes; closing the connection")));
                    return;
                }
                line.Write(buffer, start, n - start);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away (or the server is closing): its answer, if any, is dropped.
        }
        finally
        {
            _clients.TryRemove(client, out _);
            client.Dispose();
        }
    }

    private static Task Send(Stream stream, JsonObject message) =>
        stream.WriteAsync(Encoding.UTF8.GetBytes(message.ToJsonString() + "\n")).AsTask();

    private async Task<JsonObject> Handle(string text)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text);
        }
        catch (JsonException e)
        {
            return ControlProtocol.Response(null, VmControl.Reply.Fail($"malformed JSON: {e.Message}"));
        }
        if (node is not JsonObject request)
            return ControlProtocol.Response(null, VmControl.Reply.Fail("a request must be a JSON object"));
        var id = request["id"];
        var command = ControlProtocol.Parse(request, out var error);
        if (command is null) return ControlProtocol.Response(id, VmControl.Reply.Fail(error!));
        return ControlProtocol.Response(id, await Execute(command));
    }

    /// <summary>Sends <paramref name="command"/> to the VM's current supervisor and waits for its answer.</summary>
    public async Task<VmControl.Reply> Execute(VmControl.Command command)
    {
        var vm = _run.Current;
        if (vm is null)
        {
            var state = _run.Lifecycle.State;
            if (command is VmControl.GetStatus)
                return VmControl.Reply.Success(new JsonObject { ["name"] = _run.Name, ["state"] = state.Wire(), ["pid"] = Environment.ProcessId });
            return VmControl.Reply.Fail(VmLifecycle.IsFinal(state)
                ? $"the VM has ended ({state.Wire()})"
                : $"the VM is {state.Wire()}; try again in a moment");
        }
        try
        {
            return await vm.Ask<VmControl.Reply>(command, RequestTimeout);
        }
        catch (AskTimeoutException)
        {
            return VmControl.Reply.Fail($"no answer from the VM within {RequestTimeout.TotalSeconds:0} s");
        }
    }

    public void Dispose()
    {
        _closing.Cancel();
        _listener.Dispose();
        // A force-poweroff's answer is sent as the VM ends, which is when the host disposes this server: let
        // answers on their way finish (briefly) before the connections close under them.
        SpinWait.SpinUntil(() => Volatile.Read(ref _answering) == 0, TimeSpan.FromSeconds(2));
        foreach (var c in _clients.Keys) c.Dispose();
        try
        {
            _accepting.Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }
        try
        {
            File.Delete(Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
