namespace Actorvisor.Kernel.Time;

/// <summary>
/// Pending timers ordered by deadline, then by scheduling order (two timers with one deadline run in the
/// order they were scheduled). Not thread-safe: its owners lock around it.
/// </summary>
internal sealed class TimerQueue
{
    private readonly PriorityQueue<TimerHandle, (long Deadline, long Sequence)> _queue = new();
    private long _sequence;

    public int Count => _queue.Count;

    public TimerHandle Add(long deadline, Action callback)
    {
        var handle = new TimerHandle(deadline, _sequence++, callback);
        _queue.Enqueue(handle, (deadline, handle.Sequence));
        return handle;
    }

    /// <summary>The earliest deadline of a timer not cancelled, dropping cancelled ones from the front.</summary>
    public long? NextDeadline()
    {
        while (_queue.TryPeek(out var h, out _))
        {
            if (!h.IsCancelled) return h.Deadline;
            _queue.Dequeue();
        }
        return null;
    }

    /// <summary>Removes and returns the earliest timer due at <paramref name="now"/>, if any.</summary>
    public TimerHandle? TakeDue(long now)
    {
        while (_queue.TryPeek(out var h, out _))
        {
            if (h.IsCancelled) { _queue.Dequeue(); continue; }
            if (h.Deadline > now) return null;
            return _queue.Dequeue();
        }
        return null;
    }
}
