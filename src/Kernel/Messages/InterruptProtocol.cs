using System.Diagnostics;

namespace Actorvisor.Kernel.Messages;

/// <summary>Interrupt lines and messages, each carrying the trace context of the interrupt's path.</summary>
public static class InterruptProtocol
{
    public enum TriggerMode : byte { Edge, Level }
    public enum DeliveryMode : byte { Fixed = 0, LowestPriority = 1, Smi = 2, Nmi = 4, Init = 5, Startup = 6, ExtInt = 7 }

    /// <summary>Assert or deassert a GSI (bhyve's ISA assert/deassert): reaches PIC and IOAPIC.</summary>
    public sealed record SetIrq(int Gsi, bool Level, ActivityContext Trace = default);
    /// <summary>Assert then deassert a GSI (an edge).</summary>
    public sealed record PulseIrq(int Gsi, ActivityContext Trace = default);
    /// <summary>A message-signalled interrupt; address and data are opaque to the sender.</summary>
    public sealed record Msi(ulong Address, uint Data, ActivityContext Trace = default);
    public sealed record LapicDeliver(byte Vector, DeliveryMode Mode, TriggerMode Trigger, ActivityContext Trace = default);
    /// <summary>Broadcast from a LAPIC to the IOAPIC when the guest EOIs a level-triggered vector.</summary>
    public sealed record EndOfInterrupt(byte Vector, ActivityContext Trace = default);
    public sealed record LocalInterrupt(int Lint, bool Level, ActivityContext Trace = default);
}
