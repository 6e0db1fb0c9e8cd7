using Actorvisor.Kernel.Bus;

namespace Actorvisor.Kernel.Tests.Bus;

public class IoBusTests
{
    [Fact]
    public void PortAndMmioSpacesAreSeparate()
    {
        var bus = IoBus<string>.Empty.AddPio(0x3F8, 8, "com1").AddMmio(0x3F8, 8, "mmio-thing");
        Assert.True(bus.Pio.TryFind(0x3F8, 1, out var pio));
        Assert.True(bus.Mmio.TryFind(0x3F8, 1, out var mmio));
        Assert.Equal("com1", pio.Target);
        Assert.Equal("mmio-thing", mmio.Target);
    }

    [Fact]
    public void PortRangeMustStayInside64KiB()
    {
        Assert.Throws<BusRegistrationException>(() => IoBus<string>.Empty.AddPio(0xFFF8, 16, "too-far"));
        var bus = IoBus<string>.Empty.AddPio(0xFFF8, 8, "last");
        Assert.True(bus.Pio.TryFind(0xFFFF, 1, out _));
    }

    [Fact]
    public void OverlapIsRefusedPerSpace()
    {
        var bus = IoBus<string>.Empty.AddPio(0x3F8, 8, "com1");
        Assert.Throws<BusRegistrationException>(() => bus.AddPio(0x3FF, 1, "x"));
        var withLapic = bus.AddMmio(0xFEE00000, 0x1000, "lapic");
        Assert.Throws<BusRegistrationException>(() => withLapic.AddMmio(0xFEE00800, 4, "x"));
    }

    [Fact]
    public void AddingToTheBusKeepsEarlierSnapshots()
    {
        var first = IoBus<string>.Empty.AddPio(0x3F8, 8, "com1");
        var second = first.AddPio(0x2F8, 8, "com2");
        Assert.False(first.Pio.TryFind(0x2F8, 1, out _));
        Assert.True(second.Pio.TryFind(0x2F8, 1, out _));
        Assert.True(second.Pio.TryFind(0x3F8, 1, out _));
    }
}
