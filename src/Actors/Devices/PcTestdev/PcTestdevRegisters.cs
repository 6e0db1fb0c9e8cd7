namespace Actorvisor.Actors.Devices.PcTestdev;

/// <summary>Port and MMIO layout of QEMU's (and bhyve's) pc-testdev.</summary>
public static class PcTestdevRegisters
{
    /// <summary>A 32-bit scratch register, any access width.</summary>
    public const ushort IoPort = 0xE0;
    /// <summary>A 32-bit write of a guest-physical address "flushes" that page.</summary>
    public const ushort FlushPage = 0xE4;
    /// <summary>The same scratch register, accessed a byte at a time.</summary>
    public const ushort IoPortByte = 0xE8;
    /// <summary>Ports IrqLine + n (n &lt; 24): a byte write sets ISA/GSI line n to (value != 0).</summary>
    public const ushort IrqLine = 0x2000;
    public const int IrqLines = 24;
    /// <summary>A RAM-like MMIO window.</summary>
    public const ulong IoMem = 0xFF00_0000;
    public const int IoMemSize = 0x10000;
}
