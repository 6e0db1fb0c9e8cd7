using System.Buffers.Binary;
using System.Text;

namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// A little-endian byte buffer for firmware tables: fields appended in order, sizes and checksums patched
/// at the end. ACPI and MP checksums are the same rule: all bytes of the range sum to zero modulo 256.
/// </summary>
public sealed class TableBuilder
{
    private readonly List<byte> _bytes = new();

    public int Length => _bytes.Count;

    public TableBuilder U8(byte v) { _bytes.Add(v); return this; }
    public TableBuilder U16(ushort v) { U8((byte)v); return U8((byte)(v >> 8)); }
    public TableBuilder U32(uint v) { U16((ushort)v); return U16((ushort)(v >> 16)); }
    public TableBuilder U64(ulong v) { U32((uint)v); return U32((uint)(v >> 32)); }
    public TableBuilder Bytes(ReadOnlySpan<byte> b) { foreach (var x in b) _bytes.Add(x); return this; }
    public TableBuilder Zeros(int n) { for (var i = 0; i < n; i++) _bytes.Add(0); return this; }

    /// <summary>Appends <paramref name="s"/> as ASCII in a field of exactly <paramref name="width"/> bytes, padded with <paramref name="pad"/>.</summary>
    public TableBuilder Ascii(string s, int width, byte pad = (byte)' ')
    {
        if (s.Length > width) throw new ArgumentException($"'{s}' is longer than {width} bytes", nameof(s));
        Bytes(Encoding.ASCII.GetBytes(s));
        for (var i = s.Length; i < width; i++) _bytes.Add(pad);
        return this;
    }

    public void PatchU8(int offset, byte v) => _bytes[offset] = v;
    public void PatchU16(int offset, ushort v) { _bytes[offset] = (byte)v; _bytes[offset + 1] = (byte)(v >> 8); }
    public void PatchU32(int offset, uint v) { PatchU16(offset, (ushort)v); PatchU16(offset + 2, (ushort)(v >> 16)); }

    /// <summary>Stores at <paramref name="at"/> the byte that makes <paramref name="length"/> bytes from <paramref name="start"/> sum to zero.</summary>
    public void FixChecksum(int at, int start, int length)
    {
        _bytes[at] = 0;
        _bytes[at] = (byte)-Sum(_bytes.GetRange(start, length).ToArray());
    }

    public byte[] ToArray() => _bytes.ToArray();

    public static byte Sum(ReadOnlySpan<byte> bytes)
    {
        byte s = 0;
        foreach (var b in bytes) s += b;
        return s;
    }

    public static uint ReadU32(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b[offset..]);
}
