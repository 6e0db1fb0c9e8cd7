namespace Actorvisor.Actors.Devices.Rtc;

/// <summary>Messages an RTC actor takes besides bus accesses, <see cref="TimerExpired"/> and Reset.</summary>
public static class RtcProtocol
{
    public sealed record GetStatus
    {
        public static readonly GetStatus Instance = new();
    }

    /// <summary>The host sets the guest's clock (see <see cref="Rtc.SetTimeFromHost"/>); answered with <see cref="Status"/>.</summary>
    public sealed record SetTime(DateTime Utc);

    /// <summary>Read one NVRAM byte (<see cref="Rtc.IsNvramOffset"/>); answered with <see cref="NvramByte"/>, or <see cref="NvramRefused"/>.</summary>
    public sealed record ReadNvram(int Offset);

    /// <summary>Write one NVRAM byte; answered with <see cref="NvramByte"/> (the value now there), or <see cref="NvramRefused"/>.</summary>
    public sealed record WriteNvram(int Offset, byte Value);

    public sealed record NvramByte(int Offset, byte Value);
    public sealed record NvramRefused(int Offset, string Reason);

    public sealed record Status(DateTime GuestTime, bool IrqLevel, long Interrupts, long? ArmedDeadline);
}
