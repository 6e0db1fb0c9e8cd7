namespace Actorvisor.Actors.Devices.Uart;

/// <summary>Messages a UART actor takes besides the bus accesses.</summary>
public static class UartProtocol
{
    /// <summary>Bytes from the host side of the line (a terminal). They wait until the receive FIFO has room (flow control, as QEMU's backends).</summary>
    public sealed record HostInput(byte[] Data);

    public sealed record GetStatus
    {
        public static readonly GetStatus Instance = new();
    }

    public sealed record Status(long TransmittedBytes, long ReceivedBytes, long DroppedBytes, bool IrqLevel, UartState State)
    {
        /// <summary>Host input still waiting for room in the receive FIFO.</summary>
        public int PendingInput { get; init; }
    }
}
