namespace Actorvisor.Actors.Devices.Hpet;

/// <summary>Messages an HPET actor takes or sends besides bus accesses, <see cref="TimerExpired"/> and Reset.</summary>
public static class HpetProtocol
{
    public sealed record GetStatus
    {
        public static readonly GetStatus Instance = new();
    }

    public sealed record Status(ulong Counter, bool Enabled, bool LegacyReplacement, ulong InterruptStatus,
        long Interrupts, long CoalescedMatches, long? ArmedDeadline);

    /// <summary>
    /// Told to the legacy observer (if one was given) when LegacyReplacement starts or stops taking IRQ 0 and
    /// IRQ 8 (LEG_RT_CNF with ENABLE_CNF): on a PC the 8254's and the RTC's interrupts are cut off meanwhile.
    /// </summary>
    public sealed record LegacyReplacementChanged(bool Active);
}
