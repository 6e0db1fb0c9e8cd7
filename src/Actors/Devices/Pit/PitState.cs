namespace Actorvisor.Actors.Devices.Pit;

/// <summary>
/// The register state of a <see cref="Pit"/> between two accesses, for a restart from the last consistent
/// state. Counts are functions of the clock tick since <see cref="Epoch"/> (a timestamp of the PIT's clock), so
/// a PIT restored on the same clock counts on as if it had never stopped.
/// </summary>
public sealed record PitState(
    long Epoch, byte PortB, long IrqDeliveredTick, long? LastPulse, long Irq0Pulses, long CoalescedIrq0Edges,
    PitCounterState Counter0, PitCounterState Counter1, PitCounterState Counter2);

/// <summary>One 8254 counter: its programming, its counting element and its read/write latches.</summary>
public sealed record PitCounterState(
    byte ModeBits, byte AccessMode, bool BcdMode, bool Gate, int Count, bool HasCount, bool Counting, long LoadTick,
    long? FrozenElapsed, bool Triggered, int? PendingCount, long PendingTick, long LoadPendingUntil, bool IdleOut,
    int IdleValue, int? LatchedCount, byte? LatchedStatus, bool ReadMsbNext, bool WriteMsbNext, byte WriteLsb);
