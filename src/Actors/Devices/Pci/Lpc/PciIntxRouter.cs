using Akka.Actor;
using Actorvisor.Actors.Devices.Pirq;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.Pci.Lpc;

/// <summary>
/// The PCI INTx wiring of the LPC bridge around the <see cref="PirqRouter"/> model: each function's INTx
/// asserts its IOAPIC pin (16+) and its PIRQ line, and a PIRQ reaches the 8259 input its route register names.
/// Called from the function actors' threads, under a lock, and the SetIrq messages go to the 8259 and the
/// IOAPIC from the caller's thread, as the <see cref="IsaIrq.IsaIrqRouter"/> does and for the same reason: an
/// actor hop here would let a guest's EOI overtake the deassert that its own register read caused (a virtio
/// ISR read-to-clear), and the level-triggered pin would fire once more.
/// The LPC function reads and writes the route registers through here too, so one lock covers the router.
/// </summary>
public sealed class PciIntxRouter : IPirqOutput
{
    private readonly object _lock = new();
    private readonly PirqRouter _router;
    private readonly IActorRef _pic, _ioapic;
    private ushort _levelTriggered;

    /// <param name="pic">The 8259 pair (SetIrq for ISA IRQs, and its ELCR ports).</param>
    /// <param name="ioapic">The IOAPIC (SetIrq for pins 16+).</param>
    public PciIntxRouter(IActorRef pic, IActorRef ioapic, int firstPciPin = 16, int pciPins = 16)
    {
        _pic = pic;
        _ioapic = ioapic;
        _router = new PirqRouter(this, firstPciPin, pciPins);
    }

    /// <summary>Keeps the allocator off an ISA device's IRQ (COM1, the SCI ...). Build time only.</summary>
    public void Reserve(int irq)
    {
        lock (_lock) _router.Reserve(irq);
    }

    /// <summary>Wires a new INTx (build time, before the guest runs).</summary>
    public IntxRoute Allocate()
    {
        lock (_lock) return _router.AllocateIntx();
    }

    public byte Route(int pirq)
    {
        lock (_lock) return _router.Route(pirq);
    }

    public int SteeredIrq(int pirq)
    {
        lock (_lock) return _router.SteeredIrq(pirq);
    }

    public byte ReadConfig(int offset)
    {
        lock (_lock) return _router.ReadConfig(offset);
    }

    public void WriteConfig(int offset, byte value)
    {
        lock (_lock) _router.WriteConfig(offset, value);
    }

    /// <summary>The INTx output of one function: passes level changes to the router.</summary>
    public IIrqLine Line(IntxRoute route) => new Intx(this, route);

    private sealed class Intx(PciIntxRouter owner, IntxRoute route) : IIrqLine
    {
        private bool _level;
        public void Set(bool level)
        {
            lock (owner._lock)
            {
                if (level == _level) return;
                _level = level;
                owner._router.SetIntx(route, level);
            }
        }
    }

    void IPirqOutput.SetPicIrq(int irq, bool level) => _pic.Tell(new InterruptProtocol.SetIrq(irq, level), ActorRefs.NoSender);

    void IPirqOutput.SetIoApicPin(int pin, bool level) => _ioapic.Tell(new InterruptProtocol.SetIrq(pin, level), ActorRefs.NoSender);

    /// <summary>
    /// Sets the IRQ's ELCR bit: called by the allocator, so only while the machine is built, before the guest
    /// can have written the ELCR itself (the whole register is written: the allocator's bits are all it holds).
    /// </summary>
    void IPirqOutput.SetLevelTriggered(int irq)
    {
        _levelTriggered |= (ushort)(1 << irq);
        _pic.Tell(new PioWrite(Pic.PicRegisters.ElcrPort, 0, 1, (byte)_levelTriggered, -1), ActorRefs.NoSender);
        _pic.Tell(new PioWrite(Pic.PicRegisters.ElcrPort + 1, 1, 1, (byte)(_levelTriggered >> 8), -1), ActorRefs.NoSender);
    }
}
