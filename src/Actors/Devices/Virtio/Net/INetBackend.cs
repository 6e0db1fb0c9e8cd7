namespace Actorvisor.Actors.Devices.Virtio.Net;

/// <summary>The host side of a virtio-net device: where its frames go and come from.</summary>
public interface INetBackend : IDisposable
{
    /// <summary>
    /// Starts delivering frames from the host side to <paramref name="receive"/>, from any thread. The array is the
    /// receiver's to keep, and nobody writes to it after.
    /// </summary>
    void Start(Action<byte[]> receive);

    /// <summary>A frame from the guest (an Ethernet frame without the virtio header); called on the device's owner thread.</summary>
    void Send(ReadOnlySpan<byte> frame);
}
