namespace Actorvisor.Kernel.Cpu;

public sealed partial class SoftwareCpu
{
    /// <summary>
    /// I/O privilege (SDM Vol. 1, 19.5): in protected mode with CPL &gt; IOPL, and always in virtual-8086
    /// mode, the TSS I/O permission bitmap decides; a set bit or a port beyond the map is #GP(0).
    /// </summary>
    internal void CheckIoPermission(ushort port, int size)
    {
        if (!ProtectedMode) return;
        if (!V86Mode && Cpl <= Iopl) return;
        // 32/64-bit TSS: the bitmap base is at offset 0x66.
        var tssType = Tr.Attributes & 0xF;
        if (tssType != 0x9 && tssType != 0xB) throw CpuFault.General(0);
        if (Tr.Limit < 0x67) throw CpuFault.General(0);
        var mapBase = ReadSystem(Tr.Base + 0x66, 2);
        var byteOffset = mapBase + (ulong)(port >> 3);
        if (byteOffset + 1 > Tr.Limit) throw CpuFault.General(0);
        var bits = ReadSystem(Tr.Base + byteOffset, 2);
        var mask = ((1UL << size) - 1) << (port & 7);
        if ((bits & mask) != 0) throw CpuFault.General(0);
    }
}
