namespace Actorvisor.Actors.Devices.Rtc;

/// <summary>
/// The whole register state of an <see cref="Rtc"/> at a message boundary, for a restart from the last
/// consistent state: the battery-backed part (<see cref="Cmos"/>, with register B as the guest left it) plus
/// what a power cycle would lose: the index registers, NMI mask, register C's flags, the line, the time
/// registers a SET in progress holds, and where the flag evaluation and a held divider stand (guest ticks).
/// </summary>
public sealed record RtcState(
    RtcCmosState Cmos, byte Index, byte ExtendedIndex, bool NmiDisabled, byte C, bool Line, long Interrupts,
    byte[] SetRegisters, long EvaluatedTicks, long? HeldTicks);
