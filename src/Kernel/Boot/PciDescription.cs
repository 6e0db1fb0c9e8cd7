namespace Actorvisor.Kernel.Boot;

/// <summary>One PCI INTx as the firmware reports it: device (slot) and pin (0 = INTA) on bus 0, its IOAPIC GSI, and its PIRQ link (0 = A).</summary>
public sealed record PciIntxDescription(byte Device, byte Pin, uint Gsi, byte Pirq);

/// <summary>
/// What the firmware tables say about PCI: the ECAM window (MCFG) and bus range, the address windows the host
/// bridge decodes (the DSDT's PCI0 _CRS), every INTx (the _PRT and the MP table's I/O interrupt entries) and the
/// ISA IRQ each PIRQ link is steered to (the LNKA-LNKH devices; -1 = not routed).
/// </summary>
public sealed record PciDescription(
    ulong EcamBase, byte StartBus, byte EndBus,
    ulong Mmio32Base, ulong Mmio32Size, ulong Mmio64Base, ulong Mmio64Size, ushort IoBase, ushort IoLimit,
    IReadOnlyList<PciIntxDescription> Intx, IReadOnlyList<int> PirqIrqs);
