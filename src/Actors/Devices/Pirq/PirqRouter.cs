using static Actorvisor.Actors.Devices.Pirq.PirqRegisters;

namespace Actorvisor.Actors.Devices.Pirq;

/// <summary>Where the PIRQ router's outputs go.</summary>
public interface IPirqOutput
{
    /// <summary>An 8259 input (ISA IRQ 0-15) only: a steered PIRQ does not reach the IOAPIC's ISA pins (bhyve).</summary>
    void SetPicIrq(int irq, bool level);
    /// <summary>An IOAPIC pin (16 and up), where a PCI INTx arrives directly.</summary>
    void SetIoApicPin(int pin, bool level);
    /// <summary>A PCI interrupt is level-triggered and active low: the ELCR bit of a steered IRQ is set.</summary>
    void SetLevelTriggered(int irq);
}

/// <summary>How one PCI function's INTx pin is wired: its IOAPIC pin, its PIRQ line, and the interrupt line
/// register's initial value (the ISA IRQ the PIRQ was steered to, for a guest using the 8259).</summary>
public readonly record struct IntxRoute(int IoApicPin, int Pirq, byte InterruptLine);

/// <summary>
/// The PIRQ router of the PC's LPC bridge (PIIX3/ICH style, as bhyve's pci_irq.c): eight PIRQ lines A-H,
/// each steered by its route register to an ISA IRQ of the 8259. A PCI INTx asserts both its IOAPIC pin and
/// its PIRQ line, so a guest may use either controller. Lines are shared and level-triggered: a PIRQ is
/// asserted while any INTx on it is; an IRQ while any PIRQ steered to it is; an IOAPIC pin while any INTx on
/// it is. Rewriting a route register moves an asserted line to its new IRQ. A plain model: one owner calls it.
/// </summary>
public sealed class PirqRouter
{
    private readonly IPirqOutput _out;
    private readonly byte[] _route = new byte[PirqCount];
    private readonly int[] _pirqActive = new int[PirqCount];
    private readonly int[] _pirqUsers = new int[PirqCount];
    private readonly Dictionary<int, int> _ioapicActive = new();
    private readonly int[] _irqUsers = new int[16];
    private ushort _available = SteerableIrqs;
    private ushort _picLevels;
    private readonly int _firstPciPin, _pciPins;
    private int _nextPin;

    /// <param name="firstPciPin">The first IOAPIC pin for PCI (16: 0-15 are ISA).</param>
    /// <param name="pciPins">How many IOAPIC pins PCI INTx lines share round-robin (16 on our 32-pin IOAPIC).</param>
    public PirqRouter(IPirqOutput output, int firstPciPin = 16, int pciPins = 16)
    {
        _out = output;
        _firstPciPin = firstPciPin;
        _pciPins = pciPins;
        Array.Fill(_route, PowerOn);
    }

    /// <summary>The route register of PIRQ <paramref name="pirq"/> (0 = A).</summary>
    public byte Route(int pirq) => _route[pirq];

    /// <summary>The ISA IRQ a PIRQ is steered to now, or -1 when its routing is disabled or names a reserved IRQ.</summary>
    public int SteeredIrq(int pirq)
    {
        var r = _route[pirq];
        return (r & RoutingDisabled) == 0 && IsSteerable(r & IrqMask) ? r & IrqMask : -1;
    }

    /// <summary>A configuration-space byte read; offsets that are not route registers read 0.</summary>
    public byte ReadConfig(int offset)
    {
        var p = PirqAt(offset);
        return p < 0 ? (byte)0 : _route[p];
    }

    /// <summary>A configuration-space byte write; offsets that are not route registers are ignored.</summary>
    public void WriteConfig(int offset, byte value)
    {
        var p = PirqAt(offset);
        if (p < 0) return;
        _route[p] = (byte)(value & Writable);
        UpdatePic();
    }

    /// <summary>An ISA device owns this IRQ: the allocator does not steer PIRQs to it (bhyve's pci_irq_reserve).</summary>
    public void Reserve(int irq)
    {
        if ((uint)irq < 16) _available &= (ushort)~(1 << irq);
    }

    /// <summary>
    /// Wires a new PCI INTx (bhyve's pci_irq_route): the next IOAPIC pin round-robin, the least-used PIRQ, and,
    /// if that PIRQ is not steered yet, the least-used available IRQ, which becomes level-triggered in the ELCR.
    /// </summary>
    public IntxRoute AllocateIntx()
    {
        var pin = _firstPciPin + _nextPin++ % _pciPins;
        var pirq = 0;
        for (var p = 1; p < PirqCount; p++)
            if (_pirqUsers[p] < _pirqUsers[pirq]) pirq = p;
        _pirqUsers[pirq]++;
        if (_route[pirq] == PowerOn)
        {
            var irq = -1;
            for (var i = 0; i < 16; i++)
                if ((_available & (1 << i)) != 0 && (irq < 0 || _irqUsers[i] < _irqUsers[irq])) irq = i;
            if (irq >= 0)
            {
                _irqUsers[irq]++;
                _route[pirq] = (byte)irq;
                _out.SetLevelTriggered(irq);
            }
        }
        var line = SteeredIrq(pirq);
        // 0FFh in the interrupt line register means "not connected" (PCI 3.0, 6.2.4).
        return new IntxRoute(pin, pirq, line < 0 ? (byte)0xFF : (byte)line);
    }

    /// <summary>
    /// One INTx changed level; the caller sends only changes (see <see cref="Line"/>). Both the IOAPIC pin and
    /// the PIRQ line follow the OR of their sources.
    /// </summary>
    public void SetIntx(IntxRoute route, bool level)
    {
        var d = level ? 1 : -1;
        var was = _ioapicActive.GetValueOrDefault(route.IoApicPin);
        var now = Math.Max(0, was + d);
        _ioapicActive[route.IoApicPin] = now;
        if ((was > 0) != (now > 0)) _out.SetIoApicPin(route.IoApicPin, now > 0);
        _pirqActive[route.Pirq] = Math.Max(0, _pirqActive[route.Pirq] + d);
        UpdatePic();
    }

    /// <summary>An <see cref="IIrqLine"/> for one device's INTx that passes on only level changes.</summary>
    public IIrqLine Line(IntxRoute route) => new IntxLine(this, route);

    private void UpdatePic()
    {
        ushort levels = 0;
        for (var p = 0; p < PirqCount; p++)
        {
            var irq = SteeredIrq(p);
            if (irq >= 0 && _pirqActive[p] > 0) levels |= (ushort)(1 << irq);
        }
        var changed = (ushort)(levels ^ _picLevels);
        _picLevels = levels;
        // Lowered lines first, so a route moved from one IRQ to another never shows both asserted.
        for (var irq = 0; irq < 16; irq++)
            if ((changed & (1 << irq)) != 0 && (levels & (1 << irq)) == 0) _out.SetPicIrq(irq, false);
        for (var irq = 0; irq < 16; irq++)
            if ((changed & (1 << irq)) != 0 && (levels & (1 << irq)) != 0) _out.SetPicIrq(irq, true);
    }

    private sealed class IntxLine(PirqRouter router, IntxRoute route) : IIrqLine
    {
        private bool _level;
        public void Set(bool level)
        {
            if (level == _level) return;
            _level = level;
            router.SetIntx(route, level);
        }
    }
}
