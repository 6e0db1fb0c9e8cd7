using System.Text;

namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// A tiny AML emitter (ACPI 6.3, chapter 20 "ACPI Machine Language Specification"): each method returns the
/// encoded bytes of one term, and terms nest by passing those bytes to their parent. Only the few terms a
/// static DSDT needs: Name, Scope, Device, Package, Buffer, integers, strings and resource templates.
/// </summary>
public static class Aml
{
    // Opcodes (20.3 "AML Byte Stream Byte Values").
    private const byte ZeroOp = 0x00, OneOp = 0x01, NameOp = 0x08, BytePrefix = 0x0A, WordPrefix = 0x0B;
    private const byte DWordPrefix = 0x0C, StringPrefix = 0x0D, QWordPrefix = 0x0E, ScopeOp = 0x10;
    private const byte BufferOp = 0x11, PackageOp = 0x12, OnesOp = 0xFF, ExtOpPrefix = 0x5B, DeviceOp = 0x82;
    private const byte MethodOp = 0x14, IfOp = 0xA0, ElseOp = 0xA1, ReturnOp = 0xA4, StoreOp = 0x70, Arg0Op = 0x68;
    private const byte RootChar = (byte)'\\', ParentPrefixChar = (byte)'^', DualNamePrefix = 0x2E, MultiNamePrefix = 0x2F;

    /// <summary>Name (name, value).</summary>
    public static byte[] Name(string name, byte[] value) => [NameOp, .. NameString(name), .. value];

    /// <summary>Scope (name) { terms }.</summary>
    public static byte[] Scope(string name, params byte[][] terms) => [ScopeOp, .. WithPkgLength([.. NameString(name), .. Concat(terms)])];

    /// <summary>Device (name) { terms }.</summary>
    public static byte[] Device(string name, params byte[][] terms) =>
        [ExtOpPrefix, DeviceOp, .. WithPkgLength([.. NameString(name), .. Concat(terms)])];

    /// <summary>Package (n) { elements }: integers, strings, buffers or nested packages.</summary>
    public static byte[] Package(params byte[][] elements)
    {
        if (elements.Length > 255) throw new ArgumentException("a Package holds at most 255 elements (use VarPackage)");
        return [PackageOp, .. WithPkgLength([(byte)elements.Length, .. Concat(elements)])];
    }

    /// <summary>Buffer (n) { bytes }.</summary>
    public static byte[] Buffer(ReadOnlySpan<byte> bytes) => [BufferOp, .. WithPkgLength([.. Integer((ulong)bytes.Length), .. bytes])];

    /// <summary>Method (name, argc, NotSerialized) { terms }.</summary>
    public static byte[] Method(string name, int argCount, params byte[][] terms)
    {
        if (argCount is < 0 or > 7) throw new ArgumentOutOfRangeException(nameof(argCount));
        return [MethodOp, .. WithPkgLength([.. NameString(name), (byte)argCount, .. Concat(terms)])];
    }

    /// <summary>If (predicate) { terms }.</summary>
    public static byte[] If(byte[] predicate, params byte[][] terms) => [IfOp, .. WithPkgLength([.. predicate, .. Concat(terms)])];

    /// <summary>Else { terms } (directly after an If).</summary>
    public static byte[] Else(params byte[][] terms) => [ElseOp, .. WithPkgLength(Concat(terms))];

    /// <summary>Return (value).</summary>
    public static byte[] Return(byte[] value) => [ReturnOp, .. value];

    /// <summary>Store (source, target).</summary>
    public static byte[] Store(byte[] source, byte[] target) => [StoreOp, .. source, .. target];

    /// <summary>ArgN of the current method (N = 0-6).</summary>
    public static byte[] Arg(int n) => [(byte)(Arg0Op + n)];

    /// <summary>A reference to a named object (a term or a package element): its NameString.</summary>
    public static byte[] Reference(string path) => NameString(path);

    /// <summary>The shortest encoding of an integer constant, as iasl chooses it.</summary>
    public static byte[] Integer(ulong v) => v switch
    {
        0 => [ZeroOp],
        1 => [OneOp],
        ulong.MaxValue => [OnesOp],
        <= byte.MaxValue => [BytePrefix, (byte)v],
        <= ushort.MaxValue => [WordPrefix, (byte)v, (byte)(v >> 8)],
        <= uint.MaxValue => [DWordPrefix, .. BitConverter.GetBytes((uint)v)],
        _ => [QWordPrefix, .. BitConverter.GetBytes(v)],
    };

    /// <summary>A string constant (ASCII 0x01-0x7F, NUL-terminated).</summary>
    public static byte[] String(string s)
    {
        if (s.Any(c => c is '\0' or > '\x7F')) throw new ArgumentException("AML strings are 7-bit ASCII without NUL", nameof(s));
        return [StringPrefix, .. Encoding.ASCII.GetBytes(s), 0];
    }

    /// <summary>
    /// EISAID ("PNP0501"): three letters of 5 bits each and four hex digits, packed big-endian into a DWord
    /// (ACPI 6.3, 6.1.5 _HID), stored as an integer.
    /// </summary>
    public static byte[] EisaId(string id)
    {
        if (id.Length != 7 || !id[..3].All(c => c is >= 'A' and <= 'Z') || !id[3..].All(Uri.IsHexDigit))
            throw new ArgumentException($"'{id}' is not an EISA ID (three capitals, four hex digits)", nameof(id));
        var product = Convert.ToUInt16(id[3..], 16);
        var b0 = (uint)((id[0] - 0x40) << 2 | (id[1] - 0x40) >> 3);
        var b1 = (uint)(((id[1] - 0x40) & 7) << 5 | (id[2] - 0x40));
        return Integer(b0 | b1 << 8 | (uint)(product >> 8) << 16 | (uint)(product & 0xFF) << 24);
    }

    /// <summary>
    /// A NameString: an optional root ('\') or parent ('^') prefix, then dot-separated segments of up to four
    /// characters (padded with '_'), as one NameSeg, a DualNamePath or a MultiNamePath.
    /// </summary>
    public static byte[] NameString(string path)
    {
        var bytes = new List<byte>();
        var i = 0;
        if (path.StartsWith('\\')) { bytes.Add(RootChar); i = 1; }
        else while (i < path.Length && path[i] == '^') { bytes.Add(ParentPrefixChar); i++; }
        var segments = path[i..].Length == 0 ? [] : path[i..].Split('.');
        switch (segments.Length)
        {
            case 0: bytes.Add(0); break; // NullName
            case 1: break;
            case 2: bytes.Add(DualNamePrefix); break;
            default: bytes.Add(MultiNamePrefix); bytes.Add((byte)segments.Length); break;
        }
        foreach (var seg in segments) bytes.AddRange(NameSeg(seg));
        return bytes.ToArray();
    }

    private static byte[] NameSeg(string seg)
    {
        if (seg.Length is 0 or > 4 || !(seg[0] is '_' or >= 'A' and <= 'Z') || !seg.All(c => c is '_' or >= 'A' and <= 'Z' or >= '0' and <= '9'))
            throw new ArgumentException($"'{seg}' is not an AML NameSeg", nameof(seg));
        return Encoding.ASCII.GetBytes(seg.PadRight(4, '_'));
    }

    /// <summary>
    /// Prefixes <paramref name="body"/> with its PkgLength (20.2.4), which counts itself: one byte up to 63,
    /// else a lead byte (count of following bytes in bits 7-6, low nibble in bits 3-0) and 1-3 more bytes.
    /// </summary>
    public static byte[] WithPkgLength(byte[] body)
    {
        if (body.Length + 1 <= 0x3F) return [(byte)(body.Length + 1), .. body];
        for (var extra = 1; extra <= 3; extra++)
        {
            var total = body.Length + 1 + extra;
            if (total >= 1 << (4 + 8 * extra)) continue;
            var enc = new byte[1 + extra];
            enc[0] = (byte)(extra << 6 | total & 0xF);
            for (var k = 0; k < extra; k++) enc[1 + k] = (byte)(total >> (4 + 8 * k));
            return [.. enc, .. body];
        }
        throw new ArgumentException("AML package longer than 2^28 bytes");
    }

    private static byte[] Concat(byte[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>Resource descriptors for _CRS buffers (ACPI 6.3, 6.4 "Resource Data Types").</summary>
    public static class Resources
    {
        /// <summary>ResourceTemplate () { descriptors }: a Buffer closed by an End Tag (checksum 0: "treated as correct").</summary>
        public static byte[] Template(params byte[][] descriptors) => Buffer([.. Concat(descriptors), 0x79, 0x00]);

        /// <summary>IO (Decode16, port, port, 1, length): a fixed range (small item 0x47).</summary>
        public static byte[] Io(ushort port, byte length) =>
            [0x47, 0x01, (byte)port, (byte)(port >> 8), (byte)port, (byte)(port >> 8), 0x01, length];

        /// <summary>IRQ (Level, ActiveLow, Shared) { irqs }: as a PCI interrupt link reports its IRQ (small item 0x23, 3-byte form).</summary>
        public static byte[] IrqLevelLowShared(IEnumerable<int> irqs)
        {
            var mask = irqs.Aggregate(0, (m, i) => m | 1 << i);
            return [0x23, (byte)mask, (byte)(mask >> 8), 0x18];
        }

        // Address space descriptors (6.4.3.5): resource type, general flags (producer, MinFixed, MaxFixed, positive decode = 0x0C).
        private const byte ProducerFixed = 0x0C;

        /// <summary>WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, count).</summary>
        public static byte[] WordBusNumber(ushort min, ushort max) => WordAddress(2, 0, min, max);

        /// <summary>WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, length).</summary>
        public static byte[] WordIo(ushort min, ushort max) => WordAddress(1, 3, min, max);

        private static byte[] WordAddress(byte type, byte typeFlags, ushort min, ushort max)
        {
            var t = new TableBuilder();
            t.U8(0x88).U16(13).U8(type).U8(ProducerFixed).U8(typeFlags);
            t.U16(0).U16(min).U16(max).U16(0).U16((ushort)(max - min + 1));
            return t.ToArray();
        }

        /// <summary>DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0, min, max, 0, length).</summary>
        public static byte[] DWordMemory(uint min, uint max)
        {
            var t = new TableBuilder();
            t.U8(0x87).U16(23).U8(0).U8(ProducerFixed).U8(0x01);
            t.U32(0).U32(min).U32(max).U32(0).U32(max - min + 1);
            return t.ToArray();
        }

        /// <summary>QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite, 0, min, max, 0, length).</summary>
        public static byte[] QWordMemory(ulong min, ulong max)
        {
            var t = new TableBuilder();
            t.U8(0x8A).U16(43).U8(0).U8(ProducerFixed).U8(0x03);
            t.U64(0).U64(min).U64(max).U64(0).U64(max - min + 1);
            return t.ToArray();
        }

        /// <summary>Memory32Fixed (ReadWrite, base, length): a motherboard resource's claim (large item 0x86).</summary>
        public static byte[] Memory32Fixed(uint @base, uint length)
        {
            var t = new TableBuilder();
            t.U8(0x86).U16(9).U8(1).U32(@base).U32(length);
            return t.ToArray();
        }

        /// <summary>IRQNoFlags () { irq }: edge, active-high, exclusive (small item 0x22, 2-byte form).</summary>
        public static byte[] IrqNoFlags(byte irq) => [0x22, (byte)(1 << irq), (byte)(1 << irq >> 8)];
    }
}
