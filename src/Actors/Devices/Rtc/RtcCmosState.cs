namespace Actorvisor.Actors.Devices.Rtc;

/// <summary>
/// What the RTC's battery keeps when the rest of the PC is reset or rebuilt: the guest's time (its offset
/// from the host clock and the day-of-week it chose), registers A and B, and both 128-byte CMOS banks.
/// Bank 0 holds the whole register file image; its time, control and memory-size bytes are recomputed on
/// restore.
/// </summary>
public sealed record RtcCmosState(TimeSpan Offset, int DayOfWeekAdjust, byte A, byte B, byte[] Bank0, byte[] Bank1);

/// <summary>
/// The CMOS contents that outlive one VM instance: the host's VM runner keeps one across guest reboots and
/// hands it to each new RTC, which restores from it at start and stores into it whenever the guest writes
/// its time, control registers or RAM. Thread-safe (one RTC writes, the next one reads later).
/// </summary>
public sealed class CmosStore
{
    private RtcCmosState? _state;

    /// <summary>The last stored state, or null before any RTC stored one (power-on: the host's time, zeroed RAM).</summary>
    public RtcCmosState? Current => Volatile.Read(ref _state);

    public void Store(RtcCmosState state) => Volatile.Write(ref _state, state);
}
