namespace Actorvisor.Actors.Devices.AcpiPm;

/// <summary>Messages an ACPI PM actor takes besides bus accesses, <see cref="TimerExpired"/> and Reset.</summary>
public static class AcpiPmProtocol
{
    /// <summary>The host presses the power button (for a graceful shutdown on SIGTERM): PWRBTN_STS, SCI if enabled.</summary>
    public sealed record PressPowerButton
    {
        public static readonly PressPowerButton Instance = new();
    }

    public sealed record GetStatus
    {
        public static readonly GetStatus Instance = new();
    }

    public sealed record Status(AcpiPmState State, uint Timer, bool SciLevel, long SciAssertions, long? ArmedDeadline);
}
