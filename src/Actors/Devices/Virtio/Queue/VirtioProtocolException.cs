namespace Actorvisor.Actors.Devices.Virtio.Queue;

/// <summary>
/// The driver broke the virtio rules (a malformed ring or chain, a buffer outside guest RAM). Thrown inside the
/// queue core and the device models only; <see cref="VirtioDeviceBase"/> turns it into DEVICE_NEEDS_RESET and it
/// never leaves the device.
/// </summary>
public sealed class VirtioProtocolException(string message) : Exception(message);
