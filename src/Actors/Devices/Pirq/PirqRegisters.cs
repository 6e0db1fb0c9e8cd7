namespace Actorvisor.Actors.Devices.Pirq;

/// <summary>
/// The PIRQ route control registers of the PC's ISA/LPC bridge (PIIX3 datasheet 2.2.9 PIRQRC[A:D] at
/// 60h-63h; the ICH's LPC bridge adds PIRQRC[E:H] at 68h-6Bh), one byte per PIRQ line in the bridge's PCI
/// configuration space. Bit 7 disables the routing; bits 3:0 name the ISA IRQ; bits 6:4 are reserved.
/// </summary>
public static class PirqRegisters
{
    public const int PirqCount = 8;
    public const int FirstBlock = 0x60, SecondBlock = 0x68;

    public const byte RoutingDisabled = 0x80, IrqMask = 0x0F;
    /// <summary>The bits a write keeps; the reserved bits 6:4 read 0.</summary>
    public const byte Writable = RoutingDisabled | IrqMask;
    public const byte PowerOn = RoutingDisabled;

    /// <summary>
    /// The ISA IRQs a PIRQ may be steered to: 3-7, 9-12, 14, 15. The encodings 0-2, 8 and 13 are reserved
    /// (the timer, keyboard, cascade, RTC and FPU error are never shared with PCI); bhyve permits the same set.
    /// </summary>
    public const ushort SteerableIrqs = 0xDEF8;

    public static bool IsSteerable(int irq) => (uint)irq < 16 && (SteerableIrqs & (1 << irq)) != 0;

    /// <summary>The PIRQ (0 = A .. 7 = H) a configuration offset holds, or -1 if the offset is not a route register.</summary>
    public static int PirqAt(int offset) => offset switch
    {
        >= FirstBlock and < FirstBlock + 4 => offset - FirstBlock,
        >= SecondBlock and < SecondBlock + 4 => offset - SecondBlock + 4,
        _ => -1,
    };

    public static int OffsetOf(int pirq) => pirq < 4 ? FirstBlock + pirq : SecondBlock + pirq - 4;
}
