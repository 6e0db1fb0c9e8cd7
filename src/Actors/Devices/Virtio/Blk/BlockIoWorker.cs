using System.Collections.Concurrent;

namespace Actorvisor.Actors.Devices.Virtio.Blk;

/// <summary>
/// The disk's I/O thread (QEMU's iothread, Firecracker's io engine): file operations run here, in submission order,
/// never on a vCPU or actor thread; each posts its result back to the device's owner.
/// </summary>
internal sealed class BlockIoWorker : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;

    public BlockIoWorker(string name)
    {
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public void Enqueue(Action work)
    {
        try { _work.Add(work); }
        catch (InvalidOperationException) { } // disposed: the VM is going away
    }

    private void Run()
    {
        foreach (var work in _work.GetConsumingEnumerable())
        {
            // Each item reports its own I/O errors; this only keeps a bug from ending the process.
            try { work(); }
            catch (Exception e) { global::System.Console.Error.WriteLine($"virtio-blk I/O thread: {e}"); }
        }
    }

    public void Dispose()
    {
        _work.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(5));
    }
}
