namespace Actorvisor.Actors.Devices.Virtio.Console;

/// <summary>
/// Host input waiting for the guest: a bounded, thread-safe byte queue between a backend's reader thread and the
/// device. When it is full the reader blocks (the socket or pipe then pushes back on its writer), so a slow guest
/// loses nothing and a fast host never grows an unbounded buffer (CVE-2020-27173).
/// </summary>
public sealed class ConsoleInput
{
    public const int DefaultCapacity = 64 * 1024;

    private readonly object _lock = new();
    private readonly Queue<byte[]> _chunks = new();
    private int _headOffset;
    private int _count;
    private bool _closed;

    public ConsoleInput(int capacity = DefaultCapacity) => Capacity = capacity;

    public int Capacity { get; }
    public int Count { get { lock (_lock) return _count; } }

    /// <summary>Called after input arrives (on the producer's thread); the device sets it to post a delivery.</summary>
    public Action? DataAvailable { get; set; }

    /// <summary>Blocks until there is room (or <see cref="Close"/>); false once closed.</summary>
    public bool WaitForRoom(int timeoutMs = Timeout.Infinite)
    {
        lock (_lock)
        {
            while (_count >= Capacity && !_closed)
                if (!Monitor.Wait(_lock, timeoutMs)) return false;
            return !_closed;
        }
    }

    /// <summary>Queues bytes (may exceed the capacity by one chunk; producers call <see cref="WaitForRoom"/> first).</summary>
    public void Push(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        lock (_lock)
        {
            if (_closed) return;
            _chunks.Enqueue(data.ToArray());
            _count += data.Length;
        }
        DataAvailable?.Invoke();
    }

    /// <summary>Copies up to <paramref name="dest"/>.Length bytes out of the queue without removing them.</summary>
    public int Peek(Span<byte> dest)
    {
        lock (_lock)
        {
            var done = 0;
            var offset = _headOffset;
            foreach (var chunk in _chunks)
            {
                if (done == dest.Length) break;
                var n = Math.Min(dest.Length - done, chunk.Length - offset);
                chunk.AsSpan(offset, n).CopyTo(dest[done..]);
                done += n;
                offset = 0;
            }
            return done;
        }
    }

    /// <summary>Drops <paramref name="n"/> bytes the guest has taken, making room for the producer.</summary>
    public void Consume(int n)
    {
        lock (_lock)
        {
            n = Math.Min(n, _count);
            _count -= n;
            while (n > 0)
            {
                var head = _chunks.Peek();
                var take = Math.Min(n, head.Length - _headOffset);
                _headOffset += take;
                n -= take;
                if (_headOffset == head.Length) { _chunks.Dequeue(); _headOffset = 0; }
            }
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Wakes a blocked producer for good (the device is going away).</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            Monitor.PulseAll(_lock);
        }
    }
}
