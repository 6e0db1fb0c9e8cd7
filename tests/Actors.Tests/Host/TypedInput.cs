namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Keys typed by a test into the program's stdin: Read blocks until something is typed and ends (returns 0)
/// once the stream is disposed. Not an OS pipe: disposing one blocks while the program's input thread is
/// still reading it.
/// </summary>
public sealed class TypedInput : Stream
{
    private readonly System.Collections.Concurrent.BlockingCollection<byte[]> _chunks = new();
    private byte[] _current = [];
    private int _at;

    public void Type(byte[] keys) => _chunks.Add(keys);

    public override int Read(byte[] buffer, int offset, int count)
    {
        while (_at == _current.Length)
        {
            if (!_chunks.TryTake(out var next, Timeout.Infinite)) return 0;
            (_current, _at) = (next, 0);
        }
        var n = Math.Min(count, _current.Length - _at);
        Array.Copy(_current, _at, buffer, offset, n);
        _at += n;
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _chunks.CompleteAdding();
        base.Dispose(disposing);
    }

    public override void Flush() { }
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
