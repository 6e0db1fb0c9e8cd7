using Actorvisor.Actors.Devices.Pci;
using Actorvisor.Actors.Devices.Pci.VirtioPci;
using Actorvisor.Actors.Devices.Virtio;
using Actorvisor.Kernel.Memory;
using static Actorvisor.Actors.Devices.Pci.VirtioPci.VirtioPciRegisters;

namespace Actorvisor.Actors.Tests.Devices.Pci;

/// <summary>The virtio-pci modern transport (virtio 1.2, 4.1) driven as a driver would, over a fake device.</summary>
public sealed class VirtioPciFunctionTests : IDisposable
{
    private readonly GuestMemory _memory = new(16 << 20);
    private readonly FakeVirtioDevice _device = new(deviceId: 2, queues: 2, features: 1UL << 28 | 1UL << 9);
    private readonly VirtioPciFunction _f;
    private readonly RecordingIrqLine _intx = new();
    private readonly List<(ulong Address, uint Data)> _msis = new();
    private readonly List<Action> _posted = new();

    public VirtioPciFunctionTests()
    {
        _f = new VirtioPciFunction(_device, _memory);
        _f.Connect(new PciFunctionContext((a, d) => _msis.Add((a, d)), _posted.Add));
        _f.Config.Intx = _intx;
    }

    public void Dispose() => _memory.Dispose();

    private ulong Common(int field, int size) => _f.ReadBar(StructuresBar, CommonOffset + (ulong)field, size);
    private void Common(int field, int size, ulong v) => _f.WriteBar(StructuresBar, CommonOffset + (ulong)field, size, v);

    /// <summary>Finds each virtio capability by walking the list, as Linux's virtio_pci_find_capability does.</summary>
    private Dictionary<byte, (byte Bar, uint Offset, uint Length, int At)> Caps()
    {
        var caps = new Dictionary<byte, (byte, uint, uint, int)>();
        for (var at = (int)_f.ReadConfig(PciRegisters.CapabilitiesPointer, 1); at != 0; at = (int)_f.ReadConfig(at + 1, 1))
            if (_f.ReadConfig(at, 1) == PciRegisters.CapabilityVendor)
                caps.TryAdd((byte)_f.ReadConfig(at + 3, 1), ((byte)_f.ReadConfig(at + 4, 1), _f.ReadConfig(at + 8, 4), _f.ReadConfig(at + 12, 4), at));
        return caps;
    }

    [Fact]
    public void IdentifiesAsAModernVirtioFunctionWithEveryVendorCapability()
    {
        Assert.Equal(0x1042_1AF4u, _f.ReadConfig(0, 4));
        Assert.Equal(1u, _f.ReadConfig(PciRegisters.RevisionId, 1));
        Assert.Equal(0x01_00_00u, _f.ReadConfig(PciRegisters.ClassCode, 4) & 0xFF_FF_FF);
        Assert.Equal(0x1100_1AF4u, _f.ReadConfig(PciRegisters.SubsystemVendorId, 4));
        var caps = Caps();
        Assert.Equal((StructuresBar, CommonOffset, (uint)CommonLength), (caps[CapCommon].Bar, caps[CapCommon].Offset, caps[CapCommon].Length));
        Assert.Equal((StructuresBar, IsrOffset), (caps[CapIsr].Bar, caps[CapIsr].Offset));
        Assert.Equal((StructuresBar, DeviceOffset, 8u), (caps[CapDevice].Bar, caps[CapDevice].Offset, caps[CapDevice].Length));
        Assert.Equal((StructuresBar, NotifyOffset), (caps[CapNotify].Bar, caps[CapNotify].Offset));
        Assert.Equal(NotifyOffMultiplier, _f.ReadConfig(caps[CapNotify].At + 16, 4));
        Assert.Equal(20u, _f.ReadConfig(caps[CapNotify].At + 2, 1)); // cap_len with the multiplier
        Assert.True(caps.ContainsKey(CapPciCfg));
        Assert.Equal(PciBarKind.Memory64, _f.Config.Bar(StructuresBar)!.Kind);
        Assert.Equal(3u, (uint)_f.Msix.Vectors); // one per queue and one for configuration changes
    }

    [Fact]
    public void FeatureNegotiationOffersVersion1AndRefusesFeaturesNotOffered()
    {
        Common(DeviceFeatureSelect, 4, 0);
        Assert.Equal((uint)(1UL << 28 | 1UL << 9), Common(DeviceFeature, 4));
        Common(DeviceFeatureSelect, 4, 1);
        Assert.Equal(1ul, Common(DeviceFeature, 4)); // VIRTIO_F_VERSION_1 is bit 32
        Common(DeviceFeatureSelect, 4, 2);
        Assert.Equal(0ul, Common(DeviceFeature, 4));

        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver);
        Common(DriverFeatureSelect, 4, 0);
        Common(DriverFeature, 4, 1u << 9 | 1u << 3); // bit 3 was not offered
        Common(DriverFeatureSelect, 4, 1);
        Common(DriverFeature, 4, 1);
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk);
        Assert.Equal(0ul, Common(DeviceStatus, 1) & StatusFeaturesOk);

        Common(DriverFeatureSelect, 4, 0);
        Common(DriverFeature, 4, 1u << 9);
        Common(DriverFeatureSelect, 4, 1);
        Common(DriverFeature, 4, 0); // no VERSION_1: a modern device refuses
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk);
        Assert.Equal(0ul, Common(DeviceStatus, 1) & StatusFeaturesOk);

        Common(DriverFeature, 4, 1);
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk);
        Assert.Equal((ulong)(StatusAcknowledge | StatusDriver | StatusFeaturesOk), Common(DeviceStatus, 1));
        Assert.Equal(1UL << 32 | 1UL << 9, _f.DriverFeatures);
        Common(DriverFeatureSelect, 4, 0);
        Common(DriverFeature, 4, 0); // frozen after FEATURES_OK
        Assert.Equal(1UL << 32 | 1UL << 9, _f.DriverFeatures);
    }

    private void Negotiate()
    {
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver);
        Common(DriverFeatureSelect, 4, 1);
        Common(DriverFeature, 4, 1);
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk);
    }

    private void SetUpQueue(int q, ushort size, ulong desc, ushort vector)
    {
        Common(QueueSelect, 2, (ulong)q);
        Common(QueueSize, 2, size);
        Common(QueueMsixVector, 2, vector);
        // 64-bit fields written as two dwords, as Linux's vp_iowrite64_twopart does.
        Common(QueueDesc, 4, (uint)desc);
        Common(QueueDesc + 4, 4, desc >> 32);
        Common(QueueDriver, 8, desc + 0x1000);
        Common(QueueDevice, 8, desc + 0x2000);
        Common(QueueEnable, 2, 1);
    }

    [Fact]
    public void QueueSetupAndDriverOkActivateTheDeviceWithTheLayouts()
    {
        Assert.Equal(2ul, Common(NumQueues, 2));
        Negotiate();
        Common(QueueSelect, 2, 1);
        Assert.Equal(256ul, Common(QueueSize, 2));
        Common(QueueSize, 2, 100);  // not a power of two: refused
        Assert.Equal(256ul, Common(QueueSize, 2));
        Common(QueueSize, 2, 512);  // above the maximum: refused
        Assert.Equal(256ul, Common(QueueSize, 2));
        Assert.Equal(1ul, Common(QueueNotifyOff, 2));
        Common(QueueSelect, 2, 7);
        Assert.Equal(0ul, Common(QueueSize, 2)); // no such queue

        SetUpQueue(1, 64, 0x1_0000, 1);
        Assert.Equal(1ul, Common(QueueEnable, 2));
        Common(QueueSize, 2, 32); // frozen while enabled
        Assert.Equal(64ul, Common(QueueSize, 2));
        Assert.Null(_device.Activation);
        _f.WriteBar(StructuresBar, NotifyOffset + 4, 2, 1); // before DRIVER_OK: ignored
        Assert.Empty(_device.Notified);

        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk | StatusDriverOk);
        var a = Assert.IsType<VirtioActivation>(_device.Activation);
        Assert.Null(a.Queues[0]);
        Assert.Equal(new VirtqueueLayout(64, 0x1_0000, 0x1_1000, 0x1_2000), a.Queues[1]);
        Assert.Equal(1UL << 32, a.Features);
        Assert.Same(_memory, a.Memory);

        _f.WriteBar(StructuresBar, NotifyOffset + 4, 2, 1);
        _f.WriteBar(StructuresBar, NotifyOffset + 0, 2, 0); // queue 0 not enabled
        Assert.Equal([1], _device.Notified);
    }

    [Fact]
    public void MsixVectorsThatDoNotExistReadBackNoVector()
    {
        Common(ConfigMsixVector, 2, 2);
        Assert.Equal(2ul, Common(ConfigMsixVector, 2));
        Common(ConfigMsixVector, 2, 3);
        Assert.Equal((ulong)NoVector, Common(ConfigMsixVector, 2));
        Common(QueueSelect, 2, 0);
        Common(QueueMsixVector, 2, 200);
        Assert.Equal((ulong)NoVector, Common(QueueMsixVector, 2));
    }

    [Fact]
    public void UsedBufferInterruptsGoThroughTheQueueVectorWithMsixOn()
    {
        Negotiate();
        SetUpQueue(0, 16, 0x2_0000, 1);
        Common(ConfigMsixVector, 2, 0);
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk | StatusDriverOk);
        _f.WriteBar(MsixBar, 16, 4, 0xFEE0_0000);
        _f.WriteBar(MsixBar, 24, 4, 0x4061);
        _f.WriteBar(MsixBar, 28, 4, 0);   // unmask vector 1
        _f.WriteConfig(_f.Msix.Offset + 2, 2, MsixCapability.ControlEnable);

        _device.Activation!.Signals.UsedBuffers(0);
        Assert.Equal([(0xFEE0_0000UL, 0x4061u)], _msis);
        Assert.Equal(0, _f.Isr);
        Assert.False(_intx.Level);
        _device.Activation.Signals.ConfigChanged(); // vector 0 is still masked: pending
        Assert.Single(_msis);
        Assert.Equal(1ul, _f.ReadBar(MsixBar, MsixPbaOffset, 8));
        Assert.Equal(1ul, Common(ConfigGeneration, 1));
    }

    [Fact]
    public void WithoutMsixTheIsrCarriesTheCauseAndReadingItClearsItAndIntx()
    {
        Negotiate();
        SetUpQueue(0, 16, 0x2_0000, NoVector);
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk | StatusDriverOk);
        _device.Activation!.Signals.UsedBuffers(0);
        Assert.True(_intx.Level);
        _device.Activation.Signals.ConfigChanged();
        Assert.Equal((ulong)(IsrQueue | IsrConfig), _f.ReadBar(StructuresBar, IsrOffset, 1));
        Assert.False(_intx.Level);
        Assert.Equal(0ul, _f.ReadBar(StructuresBar, IsrOffset, 1));
        // INTx-disable masks the wire; the ISR still records.
        _f.WriteConfig(PciRegisters.Command, 2, PciRegisters.CommandMemorySpace | PciRegisters.CommandIntxDisable);
        _device.Activation.Signals.UsedBuffers(0);
        Assert.False(_intx.Level);
        Assert.Equal((ulong)IsrQueue, _f.ReadBar(StructuresBar, IsrOffset, 1));
    }

    [Fact]
    public void NeedsResetSetsTheStatusBitAndResetClearsEverything()
    {
        Negotiate();
        SetUpQueue(0, 16, 0x2_0000, NoVector);
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk | StatusDriverOk);
        var signals = _device.Activation!.Signals;
        signals.NeedsReset("descriptor loop");
        Assert.NotEqual(0ul, Common(DeviceStatus, 1) & StatusNeedsReset);
        Assert.Equal((ulong)IsrConfig, _f.ReadBar(StructuresBar, IsrOffset, 1));
        _f.WriteBar(StructuresBar, NotifyOffset, 2, 0); // a broken device takes no notifications
        Assert.Empty(_device.Notified);
        _f.WriteBar(StructuresBar, DeviceOffset + 4, 4, 0xAABBCCDD);

        Common(DeviceStatus, 1, 0);
        Assert.Equal(1, _device.Resets);
        Assert.Equal(0ul, Common(DeviceStatus, 1));
        Common(QueueSelect, 2, 0);
        Assert.Equal(0ul, Common(QueueEnable, 2));
        Assert.Equal(256ul, Common(QueueSize, 2));
        Assert.Equal(0ul, Common(QueueDesc, 8));
        Assert.Equal((ulong)NoVector, Common(QueueMsixVector, 2));
        Assert.Equal(0ul, _f.ReadBar(StructuresBar, DeviceOffset + 4, 4));
        // Signals from before the reset are stale and change nothing.
        signals.UsedBuffers(0);
        Assert.Equal(0, _f.Isr);
        Assert.False(_intx.Level);
    }

    [Fact]
    public void DeviceConfigurationIsReachedThroughBar4AndThePciCfgWindow()
    {
        Assert.Equal(0x4433_2211ul, _f.ReadBar(StructuresBar, DeviceOffset, 4));
        _f.WriteBar(StructuresBar, DeviceOffset, 4, 0); // read-only field
        Assert.Equal(0x4433_2211ul, _f.ReadBar(StructuresBar, DeviceOffset, 4));
        Assert.Equal(0ul, _f.ReadBar(StructuresBar, DeviceOffset + 8, 4)); // beyond ConfigSize

        // VIRTIO_PCI_CAP_PCI_CFG: bar, offset, length, then pci_cfg_data reaches the BAR.
        var at = Caps()[CapPciCfg].At;
        _f.WriteConfig(at + 4, 1, StructuresBar);
        _f.WriteConfig(at + 8, 4, DeviceOffset);
        _f.WriteConfig(at + 12, 4, 4);
        Assert.Equal(0x4433_2211u, _f.ReadConfig(at + 16, 4));
        _f.WriteConfig(at + 8, 4, CommonOffset + NumQueues);
        _f.WriteConfig(at + 12, 4, 2);
        Assert.Equal(2u, _f.ReadConfig(at + 16, 4) & 0xFFFF);
    }
}
