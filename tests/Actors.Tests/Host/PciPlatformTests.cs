using Akka.Actor;
using Actorvisor.Actors.Devices.Pci;
using Actorvisor.Actors.Devices.Pci.Host;
using Actorvisor.Actors.Devices.Pci.Lpc;
using Actorvisor.Actors.Tests.Devices.Pci;
using Actorvisor.Host.Vm;
using Actorvisor.Kernel.Memory;
using static Actorvisor.Actors.Devices.Pci.PciRegisters;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>Bus 0 as the VM builds it: fixed bridges, BAR placement in the windows, INTx pins and routes, the firmware's description.</summary>
public sealed class PciPlatformTests : IDisposable
{
    static PciPlatformTests() => VirtioDeviceCatalog.Register(FakeVirtioDevice.CatalogName, _ => new FakeVirtioDevice());

    private readonly GuestMemory _memory = new(64 << 20);

    public void Dispose() => _memory.Dispose();

    private PciPlatform Build(params (int Slot, int Function)[] at) =>
        PciPlatform.Create(at.Select(a => new PciDeviceSpec(a.Slot, a.Function, FakeVirtioDevice.CatalogName, "")).ToArray(),
            _memory, ActorRefs.Nobody, ActorRefs.Nobody);

    [Fact]
    public void TheHostAndLpcBridgesAreAlwaysThere()
    {
        var p = Build();
        Assert.Equal([HostBridge.Address, LpcBridge.Address], p.Functions.Keys.OrderBy(a => a.DevFn));
        Assert.Equal(0x06_00_00u, p.Functions[HostBridge.Address].Config.Read(RevisionId, 4) >> 8);
        Assert.Equal(0x06_01_00u, p.Functions[LpcBridge.Address].Config.Read(RevisionId, 4) >> 8);
        Assert.Empty(p.Description.Intx);
        Assert.Equal(PciWindows.EcamBase, p.Description.EcamBase);
    }

    [Fact]
    public void BarsArePlacedAlignedInsideTheirWindowsWithoutOverlapAndDecodeIsOn()
    {
        var p = Build((3, 0), (3, 1), (4, 0), (5, 0), (5, 3), (5, 4));
        var decodes = p.Functions.SelectMany(f => f.Value.Config.Decodes()).ToList();
        Assert.Equal(6 * 2, decodes.Count);
        foreach (var d in decodes)
        {
            Assert.Equal(0ul, d.Base % d.Size);
            var inside = d.Base >= p.Windows.Mmio32Base && d.End <= p.Windows.Mmio32End
                         || d.Base >= p.Windows.Mmio64Base && d.End <= p.Windows.Mmio64End;
            Assert.True(inside, $"BAR at 0x{d.Base:x} is outside the windows");
        }
        for (var i = 0; i < decodes.Count; i++)
            for (var j = i + 1; j < decodes.Count; j++)
                Assert.False(decodes[i].Base < decodes[j].End && decodes[j].Base < decodes[i].End, "two BARs overlap");
        Assert.True(p.Windows.Mmio64Base >= _memory.TopOfRam && p.Windows.Mmio64Base >= 1UL << 32);
        Assert.True(p.Functions[new PciAddress(3, 1)].Config.BusMaster);
    }

    [Fact]
    public void FunctionsOfASlotTakeIntaToIntdAndShareTheRouteOfTheirPin()
    {
        var p = Build((3, 0), (3, 1), (3, 4), (4, 0));
        byte Pin(int slot, int fn) => (byte)p.Functions[new PciAddress(slot, fn)].Config.Read(InterruptPin, 1);
        byte Line(int slot, int fn) => (byte)p.Functions[new PciAddress(slot, fn)].Config.Read(InterruptLine, 1);
        Assert.Equal(1, Pin(3, 0));
        Assert.Equal(2, Pin(3, 1));
        Assert.Equal(1, Pin(3, 4));       // function 4 wraps to INTA
        Assert.Equal(Line(3, 0), Line(3, 4));
        Assert.Equal(0, Pin(0, 0));       // bridges have no INTx
        Assert.Equal(0, Pin(31, 0));
        // One firmware entry per slot and pin, each on its own IOAPIC pin from 16, on a PIRQ steered to a free ISA IRQ.
        Assert.Equal([(3, 0), (3, 1), (4, 0)], p.Description.Intx.Select(e => ((int)e.Device, (int)e.Pin)));
        Assert.Equal([16u, 17u, 18u], p.Description.Intx.Select(e => e.Gsi));
        foreach (var e in p.Description.Intx)
        {
            var irq = p.Description.PirqIrqs[e.Pirq];
            Assert.DoesNotContain(irq, PciPlatform.ReservedIsaIrqs);
            Assert.InRange(irq, 3, 15);
        }
        Assert.Equal((byte)p.Description.PirqIrqs[p.Description.Intx[0].Pirq], Line(3, 0));
        // Multi-function slots say so in function 0's header type.
        Assert.True(p.Functions[new PciAddress(3, 0)].Config.IsMultiFunction);
        Assert.False(p.Functions[new PciAddress(4, 0)].Config.IsMultiFunction);
    }
}
