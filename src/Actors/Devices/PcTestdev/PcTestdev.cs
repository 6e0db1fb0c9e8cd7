using System.Buffers.Binary;
using static Actorvisor.Actors.Devices.PcTestdev.PcTestdevRegisters;

namespace Actorvisor.Actors.Devices.PcTestdev;

/// <summary>What a pc-testdev access asks of the machine.</summary>
public abstract record PcTestdevEffect
{
    public sealed record SetIrq(int Gsi, bool Level) : PcTestdevEffect;
    /// <summary>Drop every cached view of a guest page (decoded code, TLBs): the software analogue of QEMU's mprotect dance.</summary>
    public sealed record FlushPage(ulong GuestPhysicalPage) : PcTestdevEffect;
}

/// <summary>
/// QEMU's pc-testdev, used by kvm-unit-tests: a scratch register at 0xE0 (and byte-wise at 0xE8), a page
/// flush at 0xE4, 24 IRQ-line ports from 0x2000, and a 64 KiB RAM-like MMIO window at 0xFF000000.
/// Offsets are absolute ports (the device spans several ranges); accesses outside them are ignored.
/// </summary>
public sealed class PcTestdev
{
    private uint _scratch;
    private readonly byte[] _iomem = new byte[IoMemSize];

    public uint Scratch => _scratch;

    public uint PioRead(ushort port, int size)
    {
        if (port is >= IoPort and < IoPort + 4 or >= IoPortByte and < IoPortByte + 4)
        {
            var shift = (port & 3) * 8;
            var mask = size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
            return (_scratch >> shift) & mask;
        }
        return size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
    }

    public PcTestdevEffect? PioWrite(ushort port, int size, uint value)
    {
        if (port is >= IoPort and < IoPort + 4 or >= IoPortByte and < IoPortByte + 4)
        {
            var shift = (port & 3) * 8;
            var bits = Math.Min(size * 8, 32 - shift);
            var mask = (bits == 32 ? uint.MaxValue : (1u << bits) - 1) << shift;
            _scratch = (_scratch & ~mask) | ((value << shift) & mask);
            return null;
        }
        if (port is >= FlushPage and < FlushPage + 4 && size == 4)
            return new PcTestdevEffect.FlushPage(value & ~0xFFFUL);
        if (port >= IrqLine && port < IrqLine + IrqLines && size == 1)
            return new PcTestdevEffect.SetIrq(port - IrqLine, value != 0);
        return null;
    }

    public ulong MmioRead(ulong offset, int size)
    {
        if (offset + (ulong)size > IoMemSize) return size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
        Span<byte> b = stackalloc byte[8];
        _iomem.AsSpan((int)offset, size).CopyTo(b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    public void MmioWrite(ulong offset, int size, ulong value)
    {
        if (offset + (ulong)size > IoMemSize) return;
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        b[..size].CopyTo(_iomem.AsSpan((int)offset, size));
    }
}
