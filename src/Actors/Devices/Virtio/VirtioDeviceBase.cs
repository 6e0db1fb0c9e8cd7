using Actorvisor.Actors.Devices.Virtio.Queue;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Actors.Devices.Virtio;

/// <summary>
/// What every virtio device model shares: building its queues on DRIVER_OK, the broken state after a driver
/// error (DEVICE_NEEDS_RESET, 2.1.2), the generation that makes work posted before a reset harmless after it, and
/// the guard that keeps any failure inside the device. Device logic runs on the owner's thread only; host-side
/// threads reach it through <see cref="PostToOwner"/>.
/// </summary>
public abstract class VirtioDeviceBase : IVirtioDevice, IDisposable
{
    private volatile VirtioActivation? _activation;
    private Virtqueue?[] _queues = [];
    private volatile int _generation;
    private bool _broken;

    public abstract int DeviceId { get; }
    public abstract ulong OfferedFeatures { get; }
    public abstract int QueueCount { get; }
    public abstract ushort MaxQueueSize(int queue);
    public abstract int ConfigSize { get; }
    public abstract byte ReadConfig(int offset);
    public abstract void WriteConfig(int offset, byte value);

    /// <summary>True between DRIVER_OK and the next reset, unless the device broke.</summary>
    public bool IsLive => _activation is not null && !_broken;
    public bool IsBroken => _broken;
    /// <summary>Why the device asked for a reset, for diagnostics.</summary>
    public string? BrokenReason { get; private set; }

    protected VirtioActivation? Activation => _activation;
    protected GuestMemory Memory => _activation?.Memory ?? throw new InvalidOperationException("device is not active");
    protected ulong Features => _activation?.Features ?? 0;
    protected Virtqueue? Queue(int index) => (uint)index < (uint)_queues.Length ? _queues[index] : null;

    public void Activate(VirtioActivation activation)
    {
        ResetState();
        var queues = new Virtqueue?[QueueCount];
        _activation = activation;
        for (var i = 0; i < queues.Length; i++)
        {
            var layout = i < activation.Queues.Count ? activation.Queues[i] : null;
            if (layout is not { } l) continue;
            if (!Virtqueue.TryCreate(activation.Memory, l, MaxQueueSize(i), activation.Features, out var q, out var error))
            {
                Fail($"queue {i}: {error}");
                return;
            }
            queues[i] = q;
        }
        _queues = queues;
        Guard(OnActivated);
    }

    public void Notify(int queue)
    {
        if (!IsLive || Queue(queue) is null) return;
        Guard(() => OnNotify(queue));
    }

    public void Reset()
    {
        ResetState();
        Guard(OnReset);
    }

    private void ResetState()
    {
        _generation++;
        _activation = null;
        _queues = [];
        _broken = false;
        BrokenReason = null;
    }

    /// <summary>Called after DRIVER_OK once the queues are built.</summary>
    protected virtual void OnActivated() { }

    protected abstract void OnNotify(int queue);

    /// <summary>Back to power-on state (host resources stay open).</summary>
    protected virtual void OnReset() { }

    /// <summary>
    /// Runs <paramref name="action"/> on the owner's thread, unless the device was reset, re-activated or broke
    /// meanwhile. Safe from any thread; dropped when the device is not live.
    /// </summary>
    protected void PostToOwner(Action action)
    {
        var activation = _activation;
        if (activation is null) return;
        var generation = _generation;
        activation.Post(() =>
        {
            if (generation == _generation && IsLive) Guard(action);
        });
    }

    /// <summary>
    /// On the owner's thread, when work for the present activation goes to another thread: captures this activation
    /// and generation, so the result that thread posts back is dropped if the device was reset or re-activated
    /// meanwhile (reading them on the worker instead would hand a stale chain to the new activation's rings).
    /// </summary>
    protected Action<Action> CaptureOwner()
    {
        var activation = _activation;
        var generation = _generation;
        return action => activation?.Post(() =>
        {
            if (generation == _generation && IsLive) Guard(action);
        });
    }

    /// <summary>Like <see cref="PostToOwner"/> but also runs when the device is not live (host resources bookkeeping).</summary>
    protected bool TryPost(Action action)
    {
        var activation = _activation;
        if (activation is null) return false;
        activation.Post(() => Guard(action));
        return true;
    }

    /// <summary>Pushes a finished chain onto the used ring.</summary>
    protected void Complete(int queue, DescriptorChain chain, uint written) =>
        (Queue(queue) ?? throw new InvalidOperationException($"queue {queue} is not enabled")).PushUsed(chain.Head, written);

    /// <summary>Sends a used buffer notification if the driver asked for one.</summary>
    protected void SignalUsed(int queue)
    {
        if (Queue(queue) is { } q && q.NeedsNotification()) _activation?.Signals.UsedBuffers(queue);
    }

    /// <summary>Marks the device broken (the driver must reset it) and tells the transport, once.</summary>
    protected void Fail(string reason)
    {
        if (_broken) return;
        _broken = true;
        BrokenReason = reason;
        // The guest's driver usually just hangs on a broken device: say why on the host, as QEMU's virtio_error does.
        global::System.Console.Error.WriteLine($"actorvisor: virtio device {DeviceId} needs a reset: {reason}");
        _activation?.Signals.NeedsReset(reason);
    }

    /// <summary>Nothing the guest does may escape the device as an exception: it breaks the device instead.</summary>
    protected void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (VirtioProtocolException e)
        {
            Fail(e.Message);
        }
        catch (Exception e)
        {
            Fail($"device error: {e.GetType().Name}: {e.Message}");
        }
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing) { }
}
