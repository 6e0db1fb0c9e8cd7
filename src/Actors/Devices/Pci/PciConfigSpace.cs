using static Actorvisor.Actors.Devices.Pci.PciRegisters;

namespace Actorvisor.Actors.Devices.Pci;

/// <summary>
/// One function's configuration space with a type 0 header (PCI Local Bus 3.0, 6.1-6.2): per-bit read-only,
/// read-write and write-1-to-clear semantics from masks, BARs with sizing (all ones written reads back the size
/// mask with the type bits), the command register's decode and INTx-disable bits, the status register's
/// capabilities-list and interrupt bits, a capability list builder, and the INTx output. Bytes 256-4095 (the
/// extended space ECAM reaches) read 0 and ignore writes: no extended capabilities. A plain model.
/// </summary>
public sealed class PciConfigSpace
{
    private readonly byte[] _data = new byte[ConventionalSize];
    private readonly byte[] _writable = new byte[ConventionalSize];
    private readonly byte[] _clearOnOne = new byte[ConventionalSize];
    private readonly PciBar?[] _bars = new PciBar?[BarCount];
    /// <summary>The address bits the guest programmed, per BAR (a 64-bit BAR keeps all 64 in its first slot).</summary>
    private readonly ulong[] _barAddress = new ulong[BarCount];
    private int _lastCapability;
    private bool _intxLevel, _intxOut;

    /// <summary>Where the INTx output goes (the level after masking); null: the function has no INTx.</summary>
    public IIrqLine? Intx { get; set; }

    /// <summary>Offsets of the MSI and MSI-X capabilities, or 0; their enable bits mask INTx.</summary>
    public int MsiOffset { get; private set; }
    public int MsixOffset { get; private set; }

    public PciConfigSpace(ushort vendor, ushort device, uint classCode, byte revision = 0, ushort subsystemVendor = 0,
        ushort subsystem = 0, byte headerType = 0)
    {
        Set16(VendorId, vendor);
        Set16(DeviceId, device);
        _data[RevisionId] = revision;
        _data[ClassCode] = (byte)classCode;
        _data[ClassCode + 1] = (byte)(classCode >> 8);
        _data[ClassCode + 2] = (byte)(classCode >> 16);
        _data[HeaderType] = headerType;
        Set16(SubsystemVendorId, subsystemVendor);
        Set16(SubsystemId, subsystem);
        SetWritable16(Command, CommandWritable);
        _clearOnOne[Status + 1] = StatusWriteOneToClear >> 8;
        _writable[CacheLineSize] = 0xFF;
        _writable[LatencyTimer] = 0xFF;
        _writable[InterruptLine] = 0xFF;
        _data[InterruptLine] = InterruptLineUnknown;
    }

    public ushort Vendor => Get16(VendorId);
    public ushort DeviceIdValue => Get16(DeviceId);
    public ushort CommandValue => Get16(Command);
    public ushort StatusValue => Get16(Status);
    public bool IoEnabled => (CommandValue & CommandIoSpace) != 0;
    public bool MemoryEnabled => (CommandValue & CommandMemorySpace) != 0;
    public bool BusMaster => (CommandValue & CommandBusMaster) != 0;
    public bool IntxDisabled => (CommandValue & CommandIntxDisable) != 0;
    public bool MsiEnabled => MsiOffset != 0 && (Get16(MsiOffset + 2) & 1) != 0;
    public bool MsixEnabled => MsixOffset != 0 && (Get16(MsixOffset + 2) & 0x8000) != 0;
    public bool IsMultiFunction
    {
        get => (_data[HeaderType] & HeaderTypeMultiFunction) != 0;
        set => _data[HeaderType] = (byte)(value ? _data[HeaderType] | HeaderTypeMultiFunction : _data[HeaderType] & ~HeaderTypeMultiFunction);
    }

    /// <summary>The function's interrupt pin (1 = INTA .. 4 = INTD, 0 = none) and the line register's power-on value.</summary>
    public void SetInterruptPin(byte pin, byte line)
    {
        _data[InterruptPin] = pin;
        _data[InterruptLine] = line;
    }

    public PciBar? Bar(int index) => _bars[index];

    /// <summary>Declares BAR <paramref name="index"/> (a 64-bit BAR also takes index + 1) at <paramref name="address"/>.</summary>
    public void DefineBar(int index, PciBar bar, ulong address = 0)
    {
        bar.Validate();
        if ((uint)index >= BarCount || bar.Kind == PciBarKind.Memory64 && index == BarCount - 1)
            throw new ArgumentOutOfRangeException(nameof(index));
        _bars[index] = bar;
        _barAddress[index] = address & ~(bar.Size - 1);
    }

    /// <summary>The base the guest (or the firmware) put in BAR <paramref name="index"/>.</summary>
    public ulong BarAddress(int index) => _barAddress[index];

    public void SetBarAddress(int index, ulong address)
    {
        var bar = _bars[index] ?? throw new InvalidOperationException($"BAR {index} is not implemented");
        _barAddress[index] = address & ~(bar.Size - 1) & (bar.Kind == PciBarKind.Memory64 ? ulong.MaxValue : uint.MaxValue);
    }

    /// <summary>The BARs that decode now: memory BARs while memory space is on, I/O BARs while I/O space is on.</summary>
    public IEnumerable<PciBarDecode> Decodes()
    {
        for (var i = 0; i < BarCount; i++)
        {
            if (_bars[i] is not { } bar) continue;
            if (bar.IsIo ? !IoEnabled : !MemoryEnabled) continue;
            var a = _barAddress[i];
            if (a == 0 || a + bar.Size < a || bar.IsIo && a + bar.Size > 0x10000) continue; // unassigned, or mid-sizing
            yield return new PciBarDecode(i, bar.IsIo, a, bar.Size);
        }
    }

    /// <summary>
    /// Adds a capability at the next free dword-aligned offset from 40h, links it into the list and sets the
    /// status bit; returns its offset. <paramref name="body"/> starts after the ID and next-pointer bytes.
    /// </summary>
    public int AddCapability(byte id, ReadOnlySpan<byte> body)
    {
        var at = _lastCapability == 0 ? FirstCapability : (_lastCapability + CapabilityLength(_lastCapability) + 3) & ~3;
        if (at + 2 + body.Length > ConventionalSize) throw new InvalidOperationException("the capability list does not fit in 256 bytes");
        _data[at] = id;
        _data[at + 1] = 0;
        body.CopyTo(_data.AsSpan(at + 2));
        _capabilityLengths[at] = 2 + body.Length;
        if (_lastCapability == 0) _data[CapabilitiesPointer] = (byte)at;
        else _data[_lastCapability + 1] = (byte)at;
        _lastCapability = at;
        Set16(Status, (ushort)(Get16(Status) | StatusCapabilities));
        if (id == CapabilityMsi) MsiOffset = at;
        if (id == CapabilityMsix) MsixOffset = at;
        return at;
    }

    private readonly Dictionary<int, int> _capabilityLengths = new();
    private int CapabilityLength(int at) => _capabilityLengths[at];

    /// <summary>Makes bits guest-writable (a capability's control fields).</summary>
    public void SetWritable(int offset, ReadOnlySpan<byte> mask)
    {
        for (var i = 0; i < mask.Length; i++) _writable[offset + i] = mask[i];
    }

    public void SetWritable16(int offset, ushort mask) => SetWritable(offset, [(byte)mask, (byte)(mask >> 8)]);
    public void SetWritable32(int offset, uint mask) => SetWritable(offset, BitConverter.GetBytes(mask));

    /// <summary>Raw access for the function that owns the space (capability fields, device state).</summary>
    public byte Get8(int offset) => _data[offset];
    public ushort Get16(int offset) => (ushort)(_data[offset] | _data[offset + 1] << 8);
    public uint Get32(int offset) => (uint)(Get16(offset) | Get16(offset + 2) << 16);
    public void Set8(int offset, byte v) => _data[offset] = v;
    public void Set16(int offset, ushort v) { _data[offset] = (byte)v; _data[offset + 1] = (byte)(v >> 8); }
    public void Set32(int offset, uint v) { Set16(offset, (ushort)v); Set16(offset + 2, (ushort)(v >> 16)); }

    /// <summary>
    /// A configuration read of 1, 2 or 4 bytes. An access that crosses a dword is read a byte at a time (the
    /// mechanisms never produce one; ECAM reaches here with whatever the guest did).
    /// </summary>
    public uint Read(int offset, int size)
    {
        if (size is not (1 or 2 or 4) || offset < 0 || offset + size > ExtendedSize) return size >= 4 ? uint.MaxValue : (1u << size * 8) - 1;
        uint v = 0;
        for (var i = 0; i < size; i++) v |= (uint)ReadByte(offset + i) << 8 * i;
        return v;
    }

    /// <summary>A configuration write; read-only bits keep their value, write-1-to-clear bits clear where a 1 is written.</summary>
    public void Write(int offset, int size, uint value)
    {
        if (size is not (1 or 2 or 4) || offset < 0 || offset + size > ExtendedSize) return;
        for (var i = 0; i < size; i++)
        {
            var at = offset + i;
            if (at >= ConventionalSize) continue;
            var b = (byte)(value >> 8 * i);
            if (at is >= Bar0 and < Bar0 + 4 * BarCount) WriteBarByte(at, b);
            else _data[at] = (byte)(_data[at] & ~_writable[at] & ~(_clearOnOne[at] & b) | b & _writable[at]);
        }
        UpdateIntx();
    }

    private byte ReadByte(int at)
    {
        if (at >= ConventionalSize) return 0;
        if (at is >= Bar0 and < Bar0 + 4 * BarCount) return (byte)(BarRegister((at - Bar0) / 4) >> 8 * (at & 3));
        if (at is Status) return (byte)(_data[at] & ~StatusInterrupt | (_intxLevel ? StatusInterrupt : 0));
        return _data[at];
    }

    /// <summary>
    /// The dword a BAR slot reads: the address bits above the size, and the type bits. The upper half of a
    /// 64-bit BAR reads the address's high dword (its size mask, after all ones, is the high dword of ~(size-1)).
    /// </summary>
    private uint BarRegister(int slot)
    {
        if (_bars[slot] is { } bar)
        {
            var low = (uint)_barAddress[slot];
            return bar.Kind switch
            {
                PciBarKind.Io => low & ~(uint)(bar.Size - 1) | BarIoSpace,
                PciBarKind.Memory32 => low & ~(uint)(bar.Size - 1) | (bar.Prefetchable ? BarPrefetchable : 0),
                _ => low & ~(uint)(bar.Size - 1) | BarMemory64 | (bar.Prefetchable ? BarPrefetchable : 0),
            };
        }
        if (slot > 0 && _bars[slot - 1] is { Kind: PciBarKind.Memory64 }) return (uint)(_barAddress[slot - 1] >> 32);
        return 0; // not implemented: reads 0, ignores writes
    }

    private void WriteBarByte(int at, byte b)
    {
        var slot = (at - Bar0) / 4;
        var shift = 8 * (at & 3);
        if (_bars[slot] is { } bar)
        {
            var reg = (uint)_barAddress[slot] & ~(0xFFu << shift) | (uint)b << shift;
            var high = bar.Kind == PciBarKind.Memory64 ? _barAddress[slot] & 0xFFFF_FFFF_0000_0000 : 0;
            _barAddress[slot] = (high | reg) & ~(bar.Size - 1) & (bar.Kind == PciBarKind.Io ? 0xFFFFu : ulong.MaxValue);
            if (bar.Kind != PciBarKind.Memory64) _barAddress[slot] &= uint.MaxValue;
        }
        else if (slot > 0 && _bars[slot - 1] is { Kind: PciBarKind.Memory64 } low)
        {
            var hi = (uint)(_barAddress[slot - 1] >> 32) & ~(0xFFu << shift) | (uint)b << shift;
            _barAddress[slot - 1] = ((ulong)hi << 32 | (uint)_barAddress[slot - 1]) & ~(low.Size - 1);
        }
    }

    /// <summary>The function's interrupt condition (status bit 3); the INTx wire follows it unless masked.</summary>
    public void SetInterruptLevel(bool level)
    {
        _intxLevel = level;
        UpdateIntx();
    }

    public bool InterruptLevel => _intxLevel;

    /// <summary>The level on the INTx wire now: asserted only while neither INTx-disable nor MSI nor MSI-X masks it.</summary>
    public bool IntxAsserted => _intxOut;

    private void UpdateIntx()
    {
        var level = _intxLevel && !IntxDisabled && !MsiEnabled && !MsixEnabled;
        if (level == _intxOut) return;
        _intxOut = level;
        Intx?.Set(level);
    }
}
