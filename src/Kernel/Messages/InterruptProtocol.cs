using System.Diagnostics;

namespace Actorvisor.Kernel.Messages;

/// <summary>
/// Interrupt lines and messages, each carrying the trace context of the interrupt's path and, when metrics are
/// collected, <c>Raised</c>: the Stopwatch timestamp of the line's assertion (0: none), for the latency histogram.
/// </summary>
public static class InterruptProtocol
{
    public enum TriggerMode : byte { Edge, Level }
    public enum DeliveryMode : byte { Fixed = 0, LowestPriority = 1, Smi = 2, Nmi = 4, Init = 5, Startup = 6, ExtInt = 7 }

    /// <summary>Assert or deassert a GSI (bhyve's ISA assert/deassert): reaches PIC and IOAPIC.</summary>
    public sealed record SetIrq(int Gsi, bool Level, ActivityContext Trace = default, long Raised = 0);
    /// <summary>Assert then deassert a GSI (an edge).</summary>
    public sealed record PulseIrq(int Gsi, ActivityContext Trace = default, long Raised = 0);
    /// <summary>A message-signalled interrupt; address and data are opaque to the sender.</summary>
    public sealed record Msi(ulong Address, uint Data, ActivityContext Trace = default, long Raised = 0);
    /// <summary>ICR destination shorthand (SDM Vol. 3A, 11.6.1).</summary>
    public enum DestinationShorthand : byte { None, Self, AllIncludingSelf, AllExcludingSelf }

    /// <summary>
    /// Where an APIC-bus message goes: an 8-bit destination read as an APIC ID (physical) or as an MDA matched
    /// against each LAPIC's LDR/DFR (logical), or a shorthand relative to <paramref name="SourceVcpu"/>.
    /// </summary>
    public readonly record struct ApicDestination(byte Id, bool Logical, DestinationShorthand Shorthand = DestinationShorthand.None,
        int SourceVcpu = -1)
    {
        public static ApicDestination Physical(byte id) => new(id, false);
    }

    /// <summary>
    /// An interrupt message on the APIC bus (from the IOAPIC, an MSI or an IPI) for the LAPICs the destination
    /// names. <paramref name="Level"/> is the ICR level bit (an INIT with level 0 is INIT level de-assert).
    /// </summary>
    public sealed record LapicDeliver(byte Vector, DeliveryMode Mode, TriggerMode Trigger, ApicDestination Destination,
        bool Level = true, ActivityContext Trace = default, long Raised = 0);
    /// <summary>Broadcast from a LAPIC to the IOAPIC when the guest EOIs a level-triggered vector.</summary>
    public sealed record EndOfInterrupt(byte Vector, ActivityContext Trace = default);
    public sealed record LocalInterrupt(int Lint, bool Level, ActivityContext Trace = default, long Raised = 0);

    /// <summary>
    /// The INTA cycle a vCPU runs on the 8259 pair when it takes an ExtINT; the vCPU waits for the answer like
    /// a port read. Answered with <c>AccessResult</c>: the vector in bits 7:0, <see cref="IntrStillAsserted"/>
    /// set when INTR is still high afterwards; or <see cref="NoRequest"/> alone when INTR was already low.
    /// </summary>
    public sealed record InterruptAcknowledge
    {
        public static readonly InterruptAcknowledge Instance = new();
        public const ulong IntrStillAsserted = 1 << 8;
        /// <summary>
        /// INTR was low when the INTA arrived: the vCPU saw a level the 8259 had already withdrawn (a mask or EOI
        /// written just before, whose INTR drop is still on its way). A CPU would not have run the INTA cycle at
        /// all, so no vector is taken (not the spurious IRQ7 that a drop during the cycle gives).
        /// </summary>
        public const ulong NoRequest = 1 << 9;
    }
}
