namespace Actorvisor.Actors.Devices.Pit;

/// <summary>Messages a PIT actor takes besides bus accesses, <see cref="TimerExpired"/> and Reset.</summary>
public static class PitProtocol
{
    public sealed record GetStatus
    {
        public static readonly GetStatus Instance = new();
    }

    public sealed record Status(long Irq0Pulses, long CoalescedIrq0Edges, int Count0, bool Out0, long? ArmedDeadline);
}
