namespace Actorvisor.Actors.Devices;

/// <summary>
/// A device actor's last consistent register state, kept outside the actor so that it outlives a restart
/// (DESIGN.md, "Faults and supervision"): the actor stores its model's snapshot after every message it handled
/// without throwing, and an instance built again by its supervisor starts from it, so a message the device
/// failed on leaves no half-done change behind. The supervisor hands a store only to devices whose policy
/// restarts them from their last state; without one, a device restarts from power-on state and saves nothing.
/// Written by the device's actor, read by its next instance: a volatile reference is enough.
/// </summary>
public sealed class DeviceStateStore
{
    private object? _state;
    private long _stores;

    /// <summary>The last stored snapshot (a model's plain state record), or null before the first.</summary>
    public object? Last => Volatile.Read(ref _state);

    /// <summary>How many snapshots were stored: one per message the device handled.</summary>
    public long Stores => Interlocked.Read(ref _stores);

    public void Store(object state)
    {
        Volatile.Write(ref _state, state);
        Interlocked.Increment(ref _stores);
    }

    /// <summary>The snapshot as <typeparamref name="T"/>, or null when there is none (or of another device).</summary>
    public T? LastAs<T>() where T : class => Last as T;
}
