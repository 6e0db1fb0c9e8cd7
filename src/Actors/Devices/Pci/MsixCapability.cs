using System.Buffers.Binary;
using static Actorvisor.Actors.Devices.Pci.PciRegisters;

namespace Actorvisor.Actors.Devices.Pci;

/// <summary>
/// An MSI-X capability (PCI Local Bus 3.0, 6.8.2) with its table and pending-bit array in a memory BAR: per
/// vector a 16-byte entry (address low/high, data, vector control with the mask bit), the function mask and
/// enable bits in the message control word. A vector signalled while masked (by its own bit or the function
/// mask) sets its pending bit and is sent when unmasked. The PBA is read-only. Table entries power on masked.
/// </summary>
public sealed class MsixCapability
{
    public const ushort ControlEnable = 0x8000, ControlFunctionMask = 0x4000;
    public const int EntrySize = 16;
    private const uint VectorMasked = 1;

    private readonly PciConfigSpace _config;
    private readonly Action<ulong, uint> _send;
    private readonly byte[] _table;
    private readonly ulong[] _pending;
    public int Offset { get; }
    public int Vectors { get; }
    public int Bar { get; }
    public uint TableOffset { get; }
    public uint PbaOffset { get; }
    /// <summary>Bytes of the BAR the table and PBA take from <see cref="TableOffset"/>.</summary>
    public int TableBytes => Vectors * EntrySize;
    public int PbaBytes => (Vectors + 63) / 64 * 8;

    public MsixCapability(PciConfigSpace config, Action<ulong, uint> send, int vectors, int bar, uint tableOffset, uint pbaOffset)
    {
        if (vectors is < 1 or > 2048) throw new ArgumentOutOfRangeException(nameof(vectors));
        _config = config;
        _send = send;
        Vectors = vectors;
        Bar = bar;
        TableOffset = tableOffset;
        PbaOffset = pbaOffset;
        _table = new byte[vectors * EntrySize];
        _pending = new ulong[(vectors + 63) / 64];
        var body = new byte[10];
        BinaryPrimitives.WriteUInt16LittleEndian(body, (ushort)(vectors - 1));
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(2), tableOffset | (uint)bar);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(6), pbaOffset | (uint)bar);
        Offset = config.AddCapability(CapabilityMsix, body);
        config.SetWritable16(Offset + 2, ControlEnable | ControlFunctionMask);
        Reset();
    }

    public bool Enabled => (_config.Get16(Offset + 2) & ControlEnable) != 0;
    public bool FunctionMasked => (_config.Get16(Offset + 2) & ControlFunctionMask) != 0;

    public bool VectorMaskedBit(int v) => (Entry(v, 12) & VectorMasked) != 0;
    public bool IsPending(int v) => (_pending[v / 64] & 1UL << v % 64) != 0;

    /// <summary>Power-on: every vector masked, nothing pending (6.8.2.9).</summary>
    public void Reset()
    {
        Array.Clear(_table);
        Array.Clear(_pending);
        for (var v = 0; v < Vectors; v++) BinaryPrimitives.WriteUInt32LittleEndian(_table.AsSpan(v * EntrySize + 12), VectorMasked);
    }

    /// <summary>Whether a BAR offset falls in the table or the PBA.</summary>
    public bool Claims(ulong offset) =>
        offset >= TableOffset && offset < TableOffset + (ulong)TableBytes || offset >= PbaOffset && offset < PbaOffset + (ulong)PbaBytes;

    /// <summary>A read of the table or PBA (dword or qword accesses, as 6.8.2 allows; others read byte-wise the same).</summary>
    public ulong Read(ulong offset, int size)
    {
        ulong v = 0;
        for (var i = 0; i < size; i++) v |= (ulong)ReadByte(offset + (ulong)i) << 8 * i;
        return v;
    }

    public void Write(ulong offset, int size, ulong value)
    {
        if (offset < TableOffset || offset + (ulong)size > TableOffset + (ulong)TableBytes) return; // the PBA is read-only
        var at = (int)(offset - TableOffset);
        for (var i = 0; i < size; i++)
        {
            var pos = at + i;
            // Only bit 0 of vector control is defined; the rest is reserved and reads 0.
            _table[pos] = pos % EntrySize == 12 ? (byte)(value >> 8 * i & 1) : pos % EntrySize > 12 ? (byte)0 : (byte)(value >> 8 * i);
        }
        for (var v = at / EntrySize; v <= (at + size - 1) / EntrySize; v++) DeliverIfUnmasked(v);
    }

    /// <summary>Signals vector <paramref name="v"/>: sent, or pending while masked. False when MSI-X is off or the vector does not exist.</summary>
    public bool Trigger(int v)
    {
        if (!Enabled || (uint)v >= (uint)Vectors) return false;
        if (FunctionMasked || VectorMaskedBit(v)) _pending[v / 64] |= 1UL << v % 64;
        else Send(v);
        return true;
    }

    /// <summary>After a configuration write (the function mask or enable may have changed): pending unmasked vectors go out.</summary>
    public void ConfigWritten()
    {
        for (var v = 0; v < Vectors; v++) DeliverIfUnmasked(v);
    }

    private void DeliverIfUnmasked(int v)
    {
        if (!IsPending(v) || !Enabled || FunctionMasked || VectorMaskedBit(v)) return;
        _pending[v / 64] &= ~(1UL << v % 64);
        Send(v);
    }

    private void Send(int v) => _send(Entry(v, 0) | (ulong)Entry(v, 4) << 32, Entry(v, 8));

    private uint Entry(int v, int field) => BinaryPrimitives.ReadUInt32LittleEndian(_table.AsSpan(v * EntrySize + field));

    private byte ReadByte(ulong offset)
    {
        if (offset >= TableOffset && offset < TableOffset + (ulong)TableBytes) return _table[offset - TableOffset];
        if (offset >= PbaOffset && offset < PbaOffset + (ulong)PbaBytes)
        {
            var o = (int)(offset - PbaOffset);
            return (byte)(_pending[o / 8] >> 8 * (o % 8));
        }
        return 0;
    }
}
