namespace Actorvisor.Actors.Devices.Uart;

/// <summary>Messages a UART actor takes besides the bus accesses.</summary>
public static class UartProtocol
{
    /// <summary>Bytes from the host side of the line (a terminal). Bytes the FIFO cannot take are lost, as on the chip.</summary>
    public sealed record HostInput(byte[] Data);

    public sealed record GetStatus
    {
        public static readonly GetStatus Instance = new();
    }

    public sealed record Status(long TransmittedBytes, long ReceivedBytes, long DroppedBytes, bool IrqLevel, UartState State);
}
