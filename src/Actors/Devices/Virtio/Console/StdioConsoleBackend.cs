namespace Actorvisor.Actors.Devices.Virtio.Console;

/// <summary>A console port on the process's standard input and output.</summary>
public sealed class StdioConsoleBackend(Stream? input = null, Stream? output = null) : IConsoleBackend
{
    private readonly Stream _in = input ?? System.Console.OpenStandardInput();
    private readonly Stream _out = output ?? System.Console.OpenStandardOutput();
    private ConsoleInput? _input;

    public void Start(ConsoleInput queue)
    {
        _input = queue;
        new Thread(Read) { IsBackground = true, Name = "virtio-console stdin" }.Start();
    }

    private void Read()
    {
        var buffer = new byte[4096];
        try
        {
            while (_input!.WaitForRoom())
            {
                var n = _in.Read(buffer, 0, Math.Max(1, Math.Min(buffer.Length, _input.Capacity - _input.Count)));
                if (n == 0) return;
                _input.Push(buffer.AsSpan(0, n));
            }
        }
        catch (Exception) { } // stdin closed
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        try
        {
            _out.Write(data);
            _out.Flush();
        }
        catch (IOException) { }
    }

    public void Dispose() => _input?.Close();
}
