using Actorvisor.Actors.Devices.Pci;
using Actorvisor.Actors.Devices.Pci.VirtioPci;
using Actorvisor.Actors.Devices.Virtio.Rng;
using Actorvisor.Actors.Tests.Devices.Virtio;
using Actorvisor.Kernel.Memory;
using static Actorvisor.Actors.Devices.Pci.VirtioPci.VirtioPciRegisters;

namespace Actorvisor.Actors.Tests.Devices.Pci;

/// <summary>The transport with a real device model (virtio-rng) behind it, driven as Linux's virtio_pci and virtio_rng do.</summary>
public sealed class VirtioPciWithDeviceTests : IDisposable
{
    private readonly GuestMemory _memory = new(4 << 20);
    private readonly List<(ulong Address, uint Data)> _msis = new();
    private readonly Queue<Action> _posted = new();

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void ANotifiedRequestIsFilledAndSignalledOnTheQueuesMsixVector()
    {
        var f = new VirtioPciFunction(new VirtioRng(), _memory);
        f.Connect(new PciFunctionContext((a, d) => _msis.Add((a, d)), _posted.Enqueue));
        void Common(int field, int size, ulong v) => f.WriteBar(StructuresBar, CommonOffset + (ulong)field, size, v);
        var ring = new TestRing(_memory, 0x10000, 64);

        // MSI-X on, both vectors programmed and unmasked (pci_alloc_irq_vectors, request_irq).
        f.WriteConfig(f.Msix.Offset + 2, 2, MsixCapability.ControlEnable | MsixCapability.ControlFunctionMask);
        for (var v = 0; v < 2; v++)
        {
            f.WriteBar(MsixBar, (ulong)v * 16, 4, 0xFEE0_0000);
            f.WriteBar(MsixBar, (ulong)v * 16 + 8, 4, 0x30u + (uint)v);
            f.WriteBar(MsixBar, (ulong)v * 16 + 12, 4, 0);
        }
        f.WriteConfig(f.Msix.Offset + 2, 2, MsixCapability.ControlEnable);

        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver);
        Common(DeviceFeatureSelect, 4, 0);
        var low = f.ReadBar(StructuresBar, CommonOffset + DeviceFeature, 4);
        Common(DriverFeatureSelect, 4, 0);
        Common(DriverFeature, 4, low);
        Common(DriverFeatureSelect, 4, 1);
        Common(DriverFeature, 4, 1);
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk);
        Assert.NotEqual(0ul, f.ReadBar(StructuresBar, CommonOffset + DeviceStatus, 1) & StatusFeaturesOk);
        Common(ConfigMsixVector, 2, 0);
        Common(QueueSelect, 2, 0);
        Common(QueueSize, 2, 64);
        Common(QueueMsixVector, 2, 1);
        Common(QueueDesc, 8, ring.Desc);
        Common(QueueDriver, 8, ring.Avail);
        Common(QueueDevice, 8, ring.Used);
        Common(QueueEnable, 2, 1);
        Common(DeviceStatus, 1, StatusAcknowledge | StatusDriver | StatusFeaturesOk | StatusDriverOk);
        Assert.Equal(0ul, f.ReadBar(StructuresBar, CommonOffset + DeviceStatus, 1) & StatusNeedsReset);

        ring.AddChain((0x20000, 32, true));
        f.WriteBar(StructuresBar, NotifyOffset, 2, 0);
        while (_posted.TryDequeue(out var a)) a();
        Assert.Equal(1, ring.UsedIdx);
        Assert.Equal((0u, 32u), ring.UsedElem(0));
        Assert.Equal([(0xFEE0_0000UL, 0x31u)], _msis);
    }
}
