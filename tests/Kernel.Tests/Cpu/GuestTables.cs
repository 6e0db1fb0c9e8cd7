namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Builds descriptor-table entries the way the SDM lays them out (Vol. 3A, 3.4.5, 5.8.3, 6.11, 6.14.1, 7.2.2),
/// so tests can hand a guest its GDT, IDT and TSS.
/// </summary>
internal static class GuestTables
{
    /// <summary>A code/data/system segment descriptor: access byte = P|DPL|S|type, flags nibble = G|D/B|L|AVL.</summary>
    public static ulong Segment(uint baseAddress, uint limit, byte access, byte flags) =>
        (limit & 0xFFFF) | ((ulong)(baseAddress & 0xFF_FFFF) << 16) | ((ulong)access << 40) |
        ((ulong)((limit >> 16) & 0xF) << 48) | ((ulong)(flags & 0xF) << 52) | ((ulong)(baseAddress >> 24) << 56);

    public static ulong Code32(int dpl, bool conforming = false) =>
        Segment(0, 0xFFFFF, (byte)(0x9A | dpl << 5 | (conforming ? 4 : 0)), 0xC);

    public static ulong Data32(int dpl, bool present = true) =>
        Segment(0, 0xFFFFF, (byte)((present ? 0x92 : 0x12) | dpl << 5), 0xC);

    /// <summary>64-bit code: L = 1, D = 0.</summary>
    public static ulong Code64(int dpl) => Segment(0, 0xFFFFF, (byte)(0x9A | dpl << 5), 0xA);

    /// <summary>A 32-bit TSS descriptor (available, DPL 0).</summary>
    public static ulong Tss32(uint baseAddress, uint limit = 0x67) => Segment(baseAddress, limit, 0x89, 0);

    /// <summary>A 16-byte 64-bit TSS descriptor (available, DPL 0).</summary>
    public static (ulong Low, ulong High) Tss64(ulong baseAddress, uint limit = 0x67) =>
        (Segment((uint)baseAddress, limit, 0x89, 0), baseAddress >> 32);

    /// <summary>An 8-byte gate: type 4/C call gate, 6/7/E/F interrupt/trap gate, 5 task gate.</summary>
    public static ulong Gate(ushort selector, uint offset, int type, int dpl, int paramCount = 0, bool present = true) =>
        (offset & 0xFFFF) | ((ulong)selector << 16) | ((ulong)(paramCount & 0x1F) << 32) |
        ((ulong)((present ? 0x80 : 0) | dpl << 5 | type) << 40) | ((ulong)(offset >> 16) << 48);

    /// <summary>A 16-byte long-mode gate (type C call, E interrupt, F trap) with an IST index.</summary>
    public static (ulong Low, ulong High) Gate64(ushort selector, ulong offset, int type, int dpl, int ist = 0, bool present = true) =>
        (Gate(selector, (uint)offset, type, dpl, paramCount: ist, present), offset >> 32);

    public const int CallGate32 = 0xC, InterruptGate32 = 0xE, TrapGate32 = 0xF, TaskGate = 5;
}
