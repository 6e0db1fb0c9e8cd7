namespace Actorvisor.Actors.Devices.FwCfg;

/// <summary>QEMU's firmware configuration interface on x86: selector and data ports, and the keys we serve.</summary>
public static class FwCfgRegisters
{
    /// <summary>16-bit write: selects an item and rewinds its read offset.</summary>
    public const ushort SelectorPort = 0x510;
    /// <summary>8-bit read: the next byte of the selected item (0 past its end).</summary>
    public const ushort DataPort = 0x511;

    public const ushort Signature = 0x00;
    public const ushort Id = 0x01;
    public const ushort RamSize = 0x03;
    public const ushort NoGraphic = 0x04;
    public const ushort NbCpus = 0x05;
    public const ushort MaxCpus = 0x0F;
    public const ushort FileDir = 0x19;

    /// <summary>Selector bits above the key: bit 14 = write, bit 15 = architecture-specific.</summary>
    public const ushort KeyMask = 0x3FFF;
    /// <summary>FW_CFG_ID bit 0: the traditional (port) interface; bit 1 would be DMA, which we lack.</summary>
    public const uint IdTraditional = 1;
}
