using Actorvisor.Actors.Devices.Pirq;
using static Actorvisor.Actors.Devices.Pirq.PirqRegisters;

namespace Actorvisor.Actors.Tests.Devices.Pirq;

/// <summary>The PIRQ router against the PIIX3 PIRQRC registers and bhyve's INTx wiring (pci_irq.c).</summary>
public class PirqRouterTests
{
    private sealed class Output : IPirqOutput
    {
        public readonly List<(int Irq, bool Level)> Pic = new();
        public readonly List<(int Pin, bool Level)> IoApic = new();
        public readonly List<int> LevelTriggered = new();
        public void SetPicIrq(int irq, bool level) => Pic.Add((irq, level));
        public void SetIoApicPin(int pin, bool level) => IoApic.Add((pin, level));
        public void SetLevelTriggered(int irq) => LevelTriggered.Add(irq);
    }

    private readonly Output _out = new();
    private readonly PirqRouter _router;

    public PirqRouterTests() => _router = new PirqRouter(_out);

    [Fact]
    public void RouteRegistersSitAt60hTo63hAnd68hTo6BhAndResetDisabled()
    {
        for (var p = 0; p < PirqCount; p++) Assert.Equal(0x80, _router.ReadConfig(OffsetOf(p)));
        Assert.Equal(new[] { 0x60, 0x61, 0x62, 0x63, 0x68, 0x69, 0x6A, 0x6B },
            Enumerable.Range(0, PirqCount).Select(OffsetOf));
        Assert.Equal(0, _router.ReadConfig(0x64));     // between the blocks: not a route register
        _router.WriteConfig(0x64, 0x0B);
        Assert.Equal(0, _router.ReadConfig(0x64));
        _router.WriteConfig(0x6B, 0xFF);                // PIRQH: reserved bits 6:4 read 0
        Assert.Equal(0x8F, _router.ReadConfig(0x6B));
        Assert.Equal(-1, _router.SteeredIrq(7));        // bit 7: routing disabled
    }

    [Theory]
    [InlineData(0)] [InlineData(1)] [InlineData(2)] [InlineData(8)] [InlineData(13)]
    public void ReservedIrqEncodingsRouteNowhere(int irq)
    {
        _router.WriteConfig(0x60, (byte)irq);
        Assert.Equal(irq, _router.ReadConfig(0x60));    // stored as written
        Assert.Equal(-1, _router.SteeredIrq(0));
        _router.SetIntx(new IntxRoute(16, 0, 0xFF), true);
        Assert.Empty(_out.Pic);
        Assert.Equal((16, true), Assert.Single(_out.IoApic)); // the IOAPIC pin still sees it
    }

    [Fact]
    public void IntxAssertsItsIoApicPinAndItsSteeredPicIrqTogether()
    {
        _router.WriteConfig(0x61, 0x0B);                // PIRQB → IRQ 11
        var route = new IntxRoute(17, 1, 11);
        _router.SetIntx(route, true);
        Assert.Equal([(17, true)], _out.IoApic);
        Assert.Equal([(11, true)], _out.Pic);
        _router.SetIntx(route, false);
        Assert.Equal((17, false), _out.IoApic[^1]);
        Assert.Equal((11, false), _out.Pic[^1]);
    }

    [Fact]
    public void SharedLinesAreTheOrOfTheirSources()
    {
        _router.WriteConfig(0x60, 0x0A);                // PIRQA → IRQ 10
        _router.WriteConfig(0x62, 0x0A);                // PIRQC → IRQ 10 as well
        var a = _router.Line(new IntxRoute(16, 0, 10));
        var b = _router.Line(new IntxRoute(16, 0, 10)); // a second function on PIRQA and pin 16
        var c = _router.Line(new IntxRoute(18, 2, 10));
        a.Set(true);
        b.Set(true);
        c.Set(true);
        a.Set(true);                                    // repeated level: no change
        Assert.Equal([(10, true)], _out.Pic);
        Assert.Equal([(16, true), (18, true)], _out.IoApic);
        a.Set(false);
        c.Set(false);
        Assert.Equal([(10, true)], _out.Pic);           // b still holds PIRQA, hence IRQ 10
        Assert.Equal([(16, true), (18, true), (18, false)], _out.IoApic);
        b.Set(false);
        Assert.Equal((10, false), _out.Pic[^1]);
        Assert.Equal((16, false), _out.IoApic[^1]);
    }

    [Fact]
    public void RewritingTheRouteMovesAnAssertedLine()
    {
        _router.WriteConfig(0x63, 0x05);                // PIRQD → IRQ 5
        _router.SetIntx(new IntxRoute(19, 3, 5), true);
        _out.Pic.Clear();
        _router.WriteConfig(0x63, 0x09);                // the guest re-steers it to IRQ 9 while asserted
        Assert.Equal([(5, false), (9, true)], _out.Pic); // dropped at the old IRQ first
        _router.WriteConfig(0x63, 0x89);                // routing disabled
        Assert.Equal((9, false), _out.Pic[^1]);
        _router.WriteConfig(0x63, 0x09);
        Assert.Equal((9, true), _out.Pic[^1]);          // enabled again with the line still high
    }

    [Fact]
    public void AllocationSpreadsIntxOverPinsPirqsAndFreeIrqsAndSetsElcr()
    {
        foreach (var irq in new[] { 3, 4 }) _router.Reserve(irq); // the UARTs' IRQs are not shared
        var routes = Enumerable.Range(0, 10).Select(_ => _router.AllocateIntx()).ToArray();
        // IOAPIC pins 16 and up round-robin; PIRQs least-used first.
        Assert.Equal(Enumerable.Range(16, 10), routes.Select(r => r.IoApicPin));
        Assert.Equal(new[] { 0, 1, 2, 3, 4, 5, 6, 7, 0, 1 }, routes.Select(r => r.Pirq));
        // Each newly steered PIRQ takes the least-used permitted IRQ: 5, 6, 7, 9, 10, 11, 12, 14 (not 0-2, 8, 13, 3, 4).
        Assert.Equal(new[] { 5, 6, 7, 9, 10, 11, 12, 14 }, _out.LevelTriggered);
        Assert.Equal(new byte[] { 5, 6, 7, 9, 10, 11, 12, 14, 5, 6 }, routes.Select(r => r.InterruptLine));
        for (var p = 0; p < PirqCount; p++) Assert.Equal(_out.LevelTriggered[p], _router.ReadConfig(OffsetOf(p)));
    }

    [Fact]
    public void AllocationKeepsARouteTheGuestOrFirmwareAlreadySet()
    {
        _router.WriteConfig(0x60, 0x0B);
        var r = _router.AllocateIntx();
        Assert.Equal((0, (byte)11), (r.Pirq, r.InterruptLine));
        Assert.Empty(_out.LevelTriggered);
    }

    [Fact]
    public void WithNoIrqLeftThePirqStaysUnroutedAndTheLineReadsNotConnected()
    {
        for (var irq = 0; irq < 16; irq++) _router.Reserve(irq);
        var r = _router.AllocateIntx();
        Assert.Equal(0xFF, r.InterruptLine);
        Assert.Equal(0x80, _router.ReadConfig(0x60));
    }
}
