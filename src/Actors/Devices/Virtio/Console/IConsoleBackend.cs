namespace Actorvisor.Actors.Devices.Virtio.Console;

/// <summary>The host side of a console port.</summary>
public interface IConsoleBackend : IDisposable
{
    /// <summary>Starts reading host input into <paramref name="input"/> (on the backend's own thread).</summary>
    void Start(ConsoleInput input);

    /// <summary>Guest output; called on the device's owner thread, so it must not block for long.</summary>
    void Write(ReadOnlySpan<byte> data);
}
