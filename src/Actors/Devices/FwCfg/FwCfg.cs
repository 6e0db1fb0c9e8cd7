using System.Buffers.Binary;
using static Actorvisor.Actors.Devices.FwCfg.FwCfgRegisters;

namespace Actorvisor.Actors.Devices.FwCfg;

/// <summary>
/// QEMU's fw_cfg, port interface only: write a key to the selector, read the item's bytes one at a time
/// from the data port. Serves the signature, the interface ID, the RAM size, the CPU counts and an empty
/// file directory. Items are little-endian except the file directory, which is big-endian as in QEMU.
/// </summary>
public sealed class FwCfg
{
    private readonly Dictionary<ushort, byte[]> _items = new();
    private ushort _selected;
    private int _offset;

    public FwCfg(ulong ramSize, int cpus, int maxCpus)
    {
        _items[Signature] = "QEMU"u8.ToArray();
        _items[Id] = Le32(IdTraditional);
        _items[RamSize] = Le64(ramSize);
        _items[NoGraphic] = Le16(1);
        _items[NbCpus] = Le16((ushort)cpus);
        _items[MaxCpus] = Le16((ushort)maxCpus);
        _items[FileDir] = new byte[4]; // zero files, count big-endian
    }

    public ushort Selected => _selected;

    public uint Read(ushort port, int size)
    {
        if (port == DataPort)
        {
            // Wider reads of the data port return consecutive bytes, as QEMU's port handler does.
            uint v = 0;
            for (var i = 0; i < size; i++) v |= (uint)NextByte() << (8 * i);
            return v;
        }
        if (port == SelectorPort) return _selected;
        return size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
    }

    public void Write(ushort port, int size, uint value)
    {
        if (port == SelectorPort && size >= 2)
        {
            _selected = (ushort)(value & KeyMask);
            _offset = 0;
        }
        // Writes to items are not supported by the port interface since QEMU 2.4; ignored.
    }

    private byte NextByte()
    {
        if (!_items.TryGetValue(_selected, out var item) || _offset >= item.Length) return 0;
        return item[_offset++];
    }

    private static byte[] Le16(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return b; }
    private static byte[] Le32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }
    private static byte[] Le64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return b; }
}
