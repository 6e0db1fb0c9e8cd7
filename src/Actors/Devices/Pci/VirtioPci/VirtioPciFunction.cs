using System.Buffers.Binary;
using Actorvisor.Actors.Devices.Virtio;
using Actorvisor.Kernel.Memory;
using static Actorvisor.Actors.Devices.Pci.VirtioPci.VirtioPciRegisters;

namespace Actorvisor.Actors.Devices.Pci.VirtioPci;

/// <summary>
/// The virtio-pci modern transport (virtio 1.2, 4.1) around one <see cref="IVirtioDevice"/>: a PCI function
/// 1AF4h:1040h+ID whose vendor capabilities point into BAR 4 at the common configuration (device status,
/// feature negotiation through two 32-bit select windows, per-queue size/vector/enable/addresses), the notify
/// area (queue_notify_off = queue index, multiplier 4), the ISR byte (read to clear, and the INTx level) and
/// the device configuration; plus a PCI configuration access capability and MSI-X (one vector per queue and one
/// for configuration changes) in BAR 1. DRIVER_OK activates the device with the enabled queues' layouts;
/// status 0 resets it. A driver's misuse (a feature not offered, a bad queue size) is refused as the spec says,
/// never thrown.
/// </summary>
public sealed class VirtioPciFunction : PciFunction
{
    private readonly IVirtioDevice _device;
    private readonly GuestMemory _memory;
    private readonly MsixCapability _msix;
    private readonly int _pciCfgCap;
    private readonly Queue[] _queues;
    private uint _deviceFeatureSelect, _driverFeatureSelect;
    private ulong _driverFeatures;
    private byte _status, _generation, _isr;
    private ushort _configVector = NoVector, _queueSelect;
    private bool _needsReset;
    /// <summary>Bumped by every reset: signals from an earlier activation are stale.</summary>
    private int _epoch;

    private sealed class Queue(ushort max)
    {
        public ushort Max = max, Size = max, Vector = NoVector;
        public bool Enabled;
        public ulong Desc, Driver, Device;
        public void Reset() { Size = Max; Vector = NoVector; Enabled = false; Desc = Driver = Device = 0; }
    }

    public IVirtioDevice Device => _device;
    public byte Status => (byte)(_status | (_needsReset ? StatusNeedsReset : 0));
    public ulong DeviceFeatures => _device.OfferedFeatures | 1UL << FeatureVersion1;
    public ulong DriverFeatures => _driverFeatures;
    public byte Isr => _isr;
    public MsixCapability Msix => _msix;
    public string? NeedsResetReason { get; private set; }

    public VirtioPciFunction(IVirtioDevice device, GuestMemory memory)
        : base(new PciConfigSpace(Vendor, (ushort)(DeviceIdBase + device.DeviceId), ClassFor(device.DeviceId), Revision, Vendor, SubsystemId))
    {
        _device = device;
        _memory = memory;
        _queues = Enumerable.Range(0, device.QueueCount).Select(q => new Queue(device.MaxQueueSize(q))).ToArray();
        Config.DefineBar(MsixBar, new PciBar(PciBarKind.Memory32, MsixBarSize));
        Config.DefineBar(StructuresBar, new PciBar(PciBarKind.Memory64, StructuresBarSize, Prefetchable: true));
        AddVirtioCap(CapCommon, CommonOffset, CommonLength);
        AddVirtioCap(CapNotify, NotifyOffset, (uint)Math.Max(1, _queues.Length) * NotifyOffMultiplier, NotifyOffMultiplier);
        AddVirtioCap(CapIsr, IsrOffset, 1);
        if (device.ConfigSize > 0) AddVirtioCap(CapDevice, DeviceOffset, (uint)device.ConfigSize);
        // VIRTIO_PCI_CAP_PCI_CFG: bar, offset and length writable; pci_cfg_data (4 bytes after the cap) is a window into the BAR.
        _pciCfgCap = AddVirtioCap(CapPciCfg, 0, 0, pciCfgData: true);
        Config.SetWritable(_pciCfgCap + 4, [0xFF]);
        Config.SetWritable32(_pciCfgCap + 8, 0xFFFF_FFFF);
        Config.SetWritable32(_pciCfgCap + 12, 0xFFFF_FFFF);
        var vectors = Math.Min(MaxVectors, _queues.Length + 1);
        _msix = new MsixCapability(Config, (a, d) => Context.SendMsi(a, d), vectors, MsixBar, MsixTableOffset, MsixPbaOffset);
    }

    private int AddVirtioCap(byte type, uint offset, uint length, uint? multiplier = null, bool pciCfgData = false)
    {
        // After cap_vndr and cap_next: cap_len, cfg_type, bar, id, padding[2], offset, length[, multiplier | pci_cfg_data].
        var body = new byte[multiplier is null && !pciCfgData ? 14 : 18];
        body[0] = (byte)(body.Length + 2);
        body[1] = type;
        body[2] = type == CapPciCfg ? (byte)0 : (byte)StructuresBar;
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(6), offset);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(10), length);
        if (multiplier is { } m) BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(14), m);
        return Config.AddCapability(PciRegisters.CapabilityVendor, body);
    }

    public override uint ReadConfig(int offset, int size)
    {
        if (offset >= _pciCfgCap + 16 && offset + size <= _pciCfgCap + 20 && PciCfgWindow() is var (bar, at, length))
            return (uint)ReadBar(bar, at + (ulong)(offset - _pciCfgCap - 16), Math.Min(size, length));
        return Config.Read(offset, size);
    }

    public override void WriteConfig(int offset, int size, uint value)
    {
        if (offset >= _pciCfgCap + 16 && offset + size <= _pciCfgCap + 20 && PciCfgWindow() is var (bar, at, length))
        {
            WriteBar(bar, at + (ulong)(offset - _pciCfgCap - 16), Math.Min(size, length), value);
            return;
        }
        Config.Write(offset, size, value);
        _msix.ConfigWritten();
    }

    /// <summary>The BAR access the PCI configuration access capability names (4.1.4.9), if its length is 1, 2 or 4.</summary>
    private (int Bar, ulong Offset, int Length)? PciCfgWindow()
    {
        var length = (int)Config.Get32(_pciCfgCap + 12);
        if (length is not (1 or 2 or 4)) return null;
        return (Config.Get8(_pciCfgCap + 4), Config.Get32(_pciCfgCap + 8), length);
    }

    public override ulong ReadBar(int bar, ulong offset, int size)
    {
        if (bar == MsixBar) return _msix.Read(offset, size);
        if (bar != StructuresBar) return 0;
        if (offset < CommonOffset + CommonLength) return ReadCommon((int)offset, size);
        if (offset >= IsrOffset && offset < IsrOffset + 4) return offset == IsrOffset ? ReadIsr() : 0;
        if (offset >= DeviceOffset && offset < DeviceOffset + 0x1000)
        {
            ulong v = 0;
            var at = (int)(offset - DeviceOffset);
            for (var i = 0; i < size; i++)
                v |= (ulong)(at + i < _device.ConfigSize ? _device.ReadConfig(at + i) : 0) << 8 * i;
            return v;
        }
        return 0;
    }

    public override void WriteBar(int bar, ulong offset, int size, ulong value)
    {
        if (bar == MsixBar)
        {
            _msix.Write(offset, size, value);
            return;
        }
        if (bar != StructuresBar) return;
        if (offset < CommonOffset + CommonLength) WriteCommon((int)offset, size, value);
        else if (offset >= DeviceOffset && offset < DeviceOffset + 0x1000)
        {
            var at = (int)(offset - DeviceOffset);
            for (var i = 0; i < size; i++)
                if (at + i < _device.ConfigSize) _device.WriteConfig(at + i, (byte)(value >> 8 * i));
        }
        else if (offset >= NotifyOffset && offset < NotifyOffset + (ulong)_queues.Length * NotifyOffMultiplier)
            Notify((int)((offset - NotifyOffset) / NotifyOffMultiplier));
    }

    private Queue? Selected => _queueSelect < _queues.Length ? _queues[_queueSelect] : null;

    /// <summary>The common configuration as bytes, so accesses of any width and alignment see the same fields.</summary>
    private void FillCommon(Span<byte> v)
    {
        var features = DeviceFeatures;
        BinaryPrimitives.WriteUInt32LittleEndian(v[DeviceFeatureSelect..], _deviceFeatureSelect);
        BinaryPrimitives.WriteUInt32LittleEndian(v[DeviceFeature..], _deviceFeatureSelect switch
        {
            0 => (uint)features,
            1 => (uint)(features >> 32),
            _ => 0,
        });
        BinaryPrimitives.WriteUInt32LittleEndian(v[DriverFeatureSelect..], _driverFeatureSelect);
        BinaryPrimitives.WriteUInt32LittleEndian(v[DriverFeature..], _driverFeatureSelect switch
        {
            0 => (uint)_driverFeatures,
            1 => (uint)(_driverFeatures >> 32),
            _ => 0,
        });
        BinaryPrimitives.WriteUInt16LittleEndian(v[ConfigMsixVector..], _configVector);
        BinaryPrimitives.WriteUInt16LittleEndian(v[NumQueues..], (ushort)_queues.Length);
        v[DeviceStatus] = Status;
        v[ConfigGeneration] = _generation;
        BinaryPrimitives.WriteUInt16LittleEndian(v[QueueSelect..], _queueSelect);
        var q = Selected;
        // A queue index the device does not have reads size 0 (4.1.4.3.2: not available).
        BinaryPrimitives.WriteUInt16LittleEndian(v[QueueSize..], q?.Size ?? 0);
        BinaryPrimitives.WriteUInt16LittleEndian(v[QueueMsixVector..], q?.Vector ?? NoVector);
        BinaryPrimitives.WriteUInt16LittleEndian(v[QueueEnable..], (ushort)(q?.Enabled == true ? 1 : 0));
        BinaryPrimitives.WriteUInt16LittleEndian(v[QueueNotifyOff..], q is null ? (ushort)0 : _queueSelect);
        BinaryPrimitives.WriteUInt64LittleEndian(v[QueueDesc..], q?.Desc ?? 0);
        BinaryPrimitives.WriteUInt64LittleEndian(v[QueueDriver..], q?.Driver ?? 0);
        BinaryPrimitives.WriteUInt64LittleEndian(v[QueueDevice..], q?.Device ?? 0);
    }

    private ulong ReadCommon(int offset, int size)
    {
        Span<byte> v = stackalloc byte[CommonLength + 8];
        FillCommon(v);
        ulong r = 0;
        for (var i = 0; i < size; i++) r |= (ulong)v[offset + i] << 8 * i;
        return r;
    }

    private void WriteCommon(int offset, int size, ulong value)
    {
        Span<byte> v = stackalloc byte[CommonLength + 8];
        FillCommon(v);
        for (var i = 0; i < size && offset + i < CommonLength; i++) v[offset + i] = (byte)(value >> 8 * i);
        bool Touches(int field, int length) => offset < field + length && field < offset + size;
        var q = Selected;
        // Queue configuration is frozen while the queue is enabled (4.1.4.3.2), and everything after DRIVER_OK except status.
        var queueWritable = q is not null && !q.Enabled && (_status & StatusDriverOk) == 0;

        if (Touches(DeviceFeatureSelect, 4)) _deviceFeatureSelect = BinaryPrimitives.ReadUInt32LittleEndian(v[DeviceFeatureSelect..]);
        if (Touches(DriverFeatureSelect, 4)) _driverFeatureSelect = BinaryPrimitives.ReadUInt32LittleEndian(v[DriverFeatureSelect..]);
        if (Touches(DriverFeature, 4) && (_status & StatusFeaturesOk) == 0 && _driverFeatureSelect < 2)
        {
            var word = (ulong)BinaryPrimitives.ReadUInt32LittleEndian(v[DriverFeature..]);
            var shift = 32 * (int)_driverFeatureSelect;
            _driverFeatures = _driverFeatures & ~(0xFFFF_FFFFUL << shift) | word << shift;
        }
        if (Touches(ConfigMsixVector, 2)) _configVector = MapVector(BinaryPrimitives.ReadUInt16LittleEndian(v[ConfigMsixVector..]));
        if (Touches(QueueSelect, 2)) _queueSelect = BinaryPrimitives.ReadUInt16LittleEndian(v[QueueSelect..]);
        if (q is not null && Touches(QueueMsixVector, 2)) q.Vector = MapVector(BinaryPrimitives.ReadUInt16LittleEndian(v[QueueMsixVector..]));
        if (queueWritable)
        {
            if (Touches(QueueSize, 2))
            {
                var s = BinaryPrimitives.ReadUInt16LittleEndian(v[QueueSize..]);
                // A split queue's size is a power of two no larger than the device's maximum (2.7); others are refused.
                if (s != 0 && (s & (s - 1)) == 0 && s <= q!.Max) q.Size = s;
            }
            if (Touches(QueueDesc, 8)) q!.Desc = BinaryPrimitives.ReadUInt64LittleEndian(v[QueueDesc..]);
            if (Touches(QueueDriver, 8)) q!.Driver = BinaryPrimitives.ReadUInt64LittleEndian(v[QueueDriver..]);
            if (Touches(QueueDevice, 8)) q!.Device = BinaryPrimitives.ReadUInt64LittleEndian(v[QueueDevice..]);
            // Writing 0 does not disable a queue in virtio 1.2 without VIRTIO_F_RING_RESET: only reset does.
            if (Touches(QueueEnable, 2) && BinaryPrimitives.ReadUInt16LittleEndian(v[QueueEnable..]) == 1) q!.Enabled = true;
        }
        if (Touches(DeviceStatus, 1)) WriteStatus(v[DeviceStatus]);
    }

    /// <summary>A vector the MSI-X table does not have reads back NO_VECTOR: the driver sees the mapping failed (4.1.5.1.2).</summary>
    private ushort MapVector(ushort vector) => vector < _msix.Vectors ? vector : NoVector;

    private void WriteStatus(byte value)
    {
        if (value == 0)
        {
            Reset();
            return;
        }
        var was = _status;
        var now = (byte)(value & ~StatusNeedsReset);
        if ((now & StatusFeaturesOk) != 0 && (was & StatusFeaturesOk) == 0)
        {
            // FEATURES_OK is kept only for a subset of what was offered that includes VERSION_1 (3.1.1, 6.1).
            var acceptable = (_driverFeatures & ~DeviceFeatures) == 0 && (_driverFeatures & 1UL << FeatureVersion1) != 0;
            if (!acceptable) now &= unchecked((byte)~StatusFeaturesOk);
        }
        _status = now;
        if ((now & StatusDriverOk) != 0 && (was & StatusDriverOk) == 0 && (now & StatusFeaturesOk) != 0 && !_needsReset) Activate();
    }

    private void Activate()
    {
        var epoch = _epoch;
        var layouts = _queues.Select(q => q.Enabled ? new VirtqueueLayout(q.Size, q.Desc, q.Driver, q.Device) : (VirtqueueLayout?)null).ToArray();
        _device.Activate(new VirtioActivation(_memory, _driverFeatures, layouts, new Signals(this, epoch), Context.Post));
    }

    private void Notify(int queue)
    {
        if ((_status & StatusDriverOk) == 0 || _needsReset || !_queues[queue].Enabled) return;
        _device.Notify(queue);
    }

    /// <summary>Device reset (4.1.4.3.1: status written 0): the device and every transport register back to power-on; MSI-X stays PCI's.</summary>
    public void Reset()
    {
        _epoch++;
        _device.Reset();
        _status = 0;
        _needsReset = false;
        NeedsResetReason = null;
        _deviceFeatureSelect = _driverFeatureSelect = 0;
        _driverFeatures = 0;
        _configVector = NoVector;
        _queueSelect = 0;
        foreach (var q in _queues) q.Reset();
        _isr = 0;
        Config.SetInterruptLevel(false);
    }

    private ulong ReadIsr()
    {
        var v = _isr;
        _isr = 0;
        Config.SetInterruptLevel(false);
        return v;
    }

    /// <summary>An interrupt to the driver: through its MSI-X vector when MSI-X is on (none if NO_VECTOR), else ISR bit and INTx.</summary>
    private void Interrupt(ushort vector, byte isrBit)
    {
        if (_msix.Enabled)
        {
            if (vector != NoVector) _msix.Trigger(vector);
            return;
        }
        _isr |= isrBit;
        Config.SetInterruptLevel(true);
    }

    private sealed class Signals(VirtioPciFunction f, int epoch) : IVirtioSignals
    {
        private bool Stale => epoch != f._epoch;

        public void UsedBuffers(int queue)
        {
            if (Stale || (uint)queue >= (uint)f._queues.Length) return;
            f.Interrupt(f._queues[queue].Vector, IsrQueue);
        }

        public void ConfigChanged()
        {
            if (Stale) return;
            f._generation++;
            f.Interrupt(f._configVector, IsrConfig);
        }

        public void NeedsReset(string reason)
        {
            if (Stale || f._needsReset) return;
            f._needsReset = true;
            f.NeedsResetReason = reason;
            ConfigChanged();
        }
    }
}
