namespace Actorvisor.Actors.Devices.Rtc;

/// <summary>Messages an RTC actor takes besides bus accesses, <see cref="TimerExpired"/> and Reset.</summary>
public static class RtcProtocol
{
    public sealed record GetStatus
    {
        public static readonly GetStatus Instance = new();
    }

    public sealed record Status(DateTime GuestTime, bool IrqLevel, long Interrupts, long? ArmedDeadline);
}
