namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// A segment register with its hidden descriptor cache. <see cref="Attributes"/> uses the VMX access-rights
/// layout: type (bits 0-3), S (4), DPL (5-6), P (7), AVL (12), L (13), D/B (14), G (15), unusable (16).
/// </summary>
public struct SegmentRegister
{
    public ushort Selector;
    public ulong Base;
    /// <summary>Limit in bytes after granularity scaling (byte-granular limit of the last valid offset).</summary>
    public uint Limit;
    public uint Attributes;

    public const uint AttrAccessed = 1, AttrWritable = 2 /* data */, AttrReadable = 2 /* code */;
    public const uint AttrExpandDown = 4 /* data */, AttrConforming = 4 /* code */, AttrCode = 8;
    public const uint AttrS = 1 << 4, AttrP = 1 << 7, AttrAvl = 1 << 12, AttrL = 1 << 13, AttrDb = 1 << 14;
    public const uint AttrG = 1 << 15, AttrUnusable = 1 << 16;

    public readonly int Dpl => (int)(Attributes >> 5) & 3;
    public readonly bool Present => (Attributes & AttrP) != 0;
    public readonly bool IsCode => (Attributes & (AttrS | AttrCode)) == (AttrS | AttrCode);
    public readonly bool Long => (Attributes & AttrL) != 0;
    public readonly bool Big => (Attributes & AttrDb) != 0;
    public readonly bool Unusable => (Attributes & AttrUnusable) != 0;

    /// <summary>A real-mode segment: base = selector × 16, 64 KiB limit, read/write data.</summary>
    public static SegmentRegister RealMode(ushort selector, uint attributes = AttrP | AttrS | AttrWritable | AttrAccessed) =>
        new() { Selector = selector, Base = (ulong)selector << 4, Limit = 0xFFFF, Attributes = attributes };

    /// <summary>Builds the hidden cache from the two dwords of a GDT/LDT descriptor (SDM Vol. 3A, 3.4.5).</summary>
    public static SegmentRegister FromDescriptor(ushort selector, ulong descriptor)
    {
        var lo = (uint)descriptor;
        var hi = (uint)(descriptor >> 32);
        var limit = (lo & 0xFFFF) | (hi & 0xF0000);
        var attrs = (hi >> 8) & 0xF0FF;
        if ((attrs & AttrG) != 0) limit = (limit << 12) | 0xFFF;
        var bas = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000);
        return new SegmentRegister { Selector = selector, Base = bas, Limit = limit, Attributes = attrs };
    }

    public override readonly string ToString() => $"{Selector:x4} base={Base:x} limit={Limit:x} attr={Attributes:x}";
}

/// <summary>GDTR/IDTR.</summary>
public struct DescriptorTable
{
    public ulong Base;
    public ushort Limit;
    public override readonly string ToString() => $"base={Base:x} limit={Limit:x}";
}
