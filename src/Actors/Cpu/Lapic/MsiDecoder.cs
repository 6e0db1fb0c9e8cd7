using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Cpu.Lapic;

/// <summary>
/// Decodes an x86 MSI (SDM Vol. 3A, 11.11: address FEExxxxxh with the destination in bits 19:12, RH in bit 3,
/// DM in bit 2; data with the vector in 7:0 and the delivery mode in 10:8) into an APIC-bus message.
/// The destination mode is DM alone, as hardware, KVM (kvm_set_msi_irq) and QEMU (apic_send_msi) read it: Linux
/// in flat logical mode composes its MSIs with DM = 1 and RH = 0 (0xFEE01004 for CPU 0), and bhyve's rule (logical
/// only when RH and DM are both 1) would deliver those to the CPU whose APIC ID is the logical mask, or to none.
/// RH only permits lowest-priority redirection, which the delivery mode already says. The trigger is edge (PCI MSI
/// has no level-triggered form).
/// </summary>
public static class MsiDecoder
{
    public const ulong AddressBase = 0xFEE0_0000;
    public const int DestinationShift = 12;
    public const ulong RedirectionHint = 1 << 3, DestinationModeLogical = 1 << 2;
    public const int DeliveryModeShift = 8;

    /// <summary>The message, or null when the address is not in the interrupt window (the write goes nowhere).</summary>
    public static LapicDeliver? Decode(ulong address, uint data)
    {
        if ((address & ~0xF_FFFFUL) != AddressBase) return null; // bits 63:20 must be FEEh (and nothing above 4 GiB)
        var logical = (address & DestinationModeLogical) != 0;
        var mode = (DeliveryMode)((data >> DeliveryModeShift) & 7);
        return new LapicDeliver((byte)data, mode, TriggerMode.Edge,
            new ApicDestination((byte)(address >> DestinationShift), logical));
    }
}
