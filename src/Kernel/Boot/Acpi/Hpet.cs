namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// The IA-PC HPET Description Table (Intel "IA-PC HPET Specification" 1.0a, 3.2.4): the event timer block's
/// capabilities ID, its MMIO base as a Generic Address Structure, sequence number 0 and the minimum
/// periodic tick the block can deliver without lost interrupts.
/// </summary>
public static class Hpet
{
    public const byte Revision = 1;
    public const int Length = 56;
    /// <summary>Minimum clock ticks for periodic mode (QEMU reports 128).</summary>
    public const ushort MinimumTick = 128;

    public static byte[] Build(PlatformDescription d, ulong address)
    {
        var t = AcpiHeader.Begin("HPET", Revision);
        t.U32(d.HpetBlockId);
        new Gas(Gas.SystemMemory, 64, 0, 0, address).WriteTo(t);
        t.U8(0);            // HPET number
        t.U16(MinimumTick);
        t.U8(0);            // page protection: none guaranteed
        return AcpiHeader.Finish(t);
    }
}
