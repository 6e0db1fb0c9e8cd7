using Akka.Actor;
using Actorvisor.Actors.Devices.Pci;
using Actorvisor.Actors.Devices.Pci.Host;
using Actorvisor.Actors.Devices.Pci.Lpc;
using Actorvisor.Actors.Devices.Pci.VirtioPci;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Host.Vm;

/// <summary>
/// Bus 0 of one VM: the host bridge at 00:00.0, the LPC bridge with the PIRQ router at 00:1f.0, and a
/// virtio-pci function for each <see cref="PciDeviceSpec"/>. Built in two steps: <see cref="Create"/> makes the
/// function models, wires each INTx (slot pin by function number, one IOAPIC pin and PIRQ per slot and pin),
/// places the BARs as firmware would (32-bit memory from the bottom of the PCI hole, 64-bit above RAM, I/O from
/// 0x2000, each aligned to its size) and describes it all for the firmware tables; <see cref="Attach"/> spawns
/// the PCI host actor (with the functions as its children) and routes the configuration ports, ECAM and the
/// windows to it.
/// </summary>
public sealed class PciPlatform
{
    private readonly Dictionary<PciAddress, IPciFunction> _functions = new();
    public PciWindows Windows { get; }
    public PciIntxRouter Intx { get; }
    public PciDescription Description { get; private set; } = null!;
    public IReadOnlyDictionary<PciAddress, IPciFunction> Functions => _functions;

    /// <summary>ISA IRQs of the legacy devices (COM1, the SCI, the PS/2 mouse) that PIRQs must not be steered to.</summary>
    public static readonly int[] ReservedIsaIrqs = [4, 9, 12];

    /// <summary>A PCI device's name in fault rules: its kind and slot (<c>virtio-blk-3</c>), with <c>.F</c> for a function other than 0.</summary>
    public static string FaultName(PciDeviceSpec d) => $"{d.Device}-{d.Slot}" + (d.Function != 0 ? $".{d.Function}" : "");

    /// <summary>The names of the PCI devices, as fault rules name them.</summary>
    public List<string> DeviceNames { get; } = new();

    private PciPlatform(PciWindows windows, PciIntxRouter intx)
    {
        Windows = windows;
        Intx = intx;
    }

    /// <param name="pic">The 8259 pair (PIRQ levels and ELCR bits).</param>
    /// <param name="ioapic">The IOAPIC (pins 16+).</param>
    /// <param name="deterministic">The deterministic schedule: devices do their host I/O inline (virtio-blk's `sync`).</param>
    /// <param name="faults">The VM's fault engine: each virtio-blk and virtio-net gets its fault point, named <see cref="FaultName"/>.</param>
    public static PciPlatform Create(IReadOnlyList<PciDeviceSpec> devices, GuestMemory memory, IActorRef pic, IActorRef ioapic,
        bool deterministic = false, Actorvisor.Kernel.Faults.FaultEngine? faults = null)
    {
        var p = new PciPlatform(PciWindows.For(memory.TopOfRam), new PciIntxRouter(pic, ioapic));
        foreach (var irq in ReservedIsaIrqs) p.Intx.Reserve(irq);
        p._functions[HostBridge.Address] = new HostBridge();
        p._functions[LpcBridge.Address] = new LpcBridge(p.Intx);
        foreach (var d in devices)
        {
            var options = deterministic && d.Device == "virtio-blk" ? d.Options + "," + VirtioDeviceOptions.SynchronousOption : d.Options;
            var device = VirtioDeviceCatalog.Create(d.Device, options);
            var name = FaultName(d);
            p.DeviceNames.Add(name);
            if (faults is not null)
            {
                if (device is Actorvisor.Actors.Devices.Virtio.Blk.VirtioBlk blk) blk.Faults = new Actorvisor.Actors.Devices.Virtio.Blk.EngineBlockFaults(faults, name);
                if (device is Actorvisor.Actors.Devices.Virtio.Net.VirtioNet net) net.Faults = new Actorvisor.Actors.Devices.Virtio.Net.EngineNetFaults(faults, name);
            }
            p._functions[new PciAddress(d.Slot, d.Function)] = new VirtioPciFunction(device, memory);
        }

        var intx = new List<PciIntxDescription>();
        var routes = new Dictionary<(int Slot, int Pin), Actorvisor.Actors.Devices.Pirq.IntxRoute>();
        foreach (var (address, f) in p._functions.OrderBy(e => e.Key.DevFn))
        {
            if (address.Function == 0) f.Config.IsMultiFunction = p._functions.Keys.Any(a => a.Device == address.Device && a.Function != 0);
            if (f is HostBridge or LpcBridge) continue;
            // Functions of a slot spread over INTA-INTD; functions with the same pin share its wire.
            var pin = address.Function % 4;
            if (!routes.TryGetValue((address.Device, pin), out var route))
            {
                route = p.Intx.Allocate();
                routes[(address.Device, pin)] = route;
                intx.Add(new PciIntxDescription(address.Device, (byte)pin, (uint)route.IoApicPin, (byte)route.Pirq));
            }
            f.Config.SetInterruptPin((byte)(pin + 1), route.InterruptLine);
            f.Config.Intx = p.Intx.Line(route);
        }
        p.PlaceBars();
        var w = p.Windows;
        p.Description = new PciDescription(PciWindows.EcamBase, 0, PciWindows.EcamEndBus, w.Mmio32Base, w.Mmio32Size,
            w.Mmio64Base, w.Mmio64Size, w.IoBase, w.IoLimit, intx,
            Enumerable.Range(0, Actorvisor.Actors.Devices.Pirq.PirqRegisters.PirqCount).Select(p.Intx.SteeredIrq).ToArray());
        return p;
    }

    /// <summary>Places every BAR in its window, largest first so each is naturally aligned without gaps, and turns decoding on.</summary>
    private void PlaceBars()
    {
        var next = new Dictionary<PciBarKind, ulong>
        {
            [PciBarKind.Io] = Windows.IoBase, [PciBarKind.Memory32] = Windows.Mmio32Base, [PciBarKind.Memory64] = Windows.Mmio64Base,
        };
        var bars = _functions.SelectMany(f => Enumerable.Range(0, PciRegisters.BarCount)
                .Where(i => f.Value.Config.Bar(i) is not null).Select(i => (Function: f.Value, Index: i, Bar: f.Value.Config.Bar(i)!)))
            .OrderByDescending(b => b.Bar.Size).ToArray();
        foreach (var (f, index, bar) in bars)
        {
            var at = (next[bar.Kind] + bar.Size - 1) & ~(bar.Size - 1);
            var limit = bar.Kind switch
            {
                PciBarKind.Io => (ulong)Windows.IoLimit + 1,
                PciBarKind.Memory32 => Windows.Mmio32End,
                _ => Windows.Mmio64End,
            };
            if (at + bar.Size > limit) throw new InvalidOperationException($"the PCI {bar.Kind} window is full");
            f.Config.SetBarAddress(index, at);
            next[bar.Kind] = at + bar.Size;
        }
        foreach (var f in _functions.Values)
        {
            var command = PciRegisters.CommandMemorySpace | PciRegisters.CommandIoSpace | PciRegisters.CommandBusMaster;
            if (f is HostBridge or LpcBridge) command = PciRegisters.CommandMemorySpace | PciRegisters.CommandIoSpace;
            f.Config.Write(PciRegisters.Command, 2, (uint)command);
        }
    }

    /// <summary>
    /// Spawns the PCI host ("pci", with pci/&lt;bdf&gt; children) and routes to it 0xCF8-0xCFF (passing 0xCF9 on to
    /// <paramref name="resetControl"/>), the ECAM window, both memory windows and the free ports of the I/O window.
    /// </summary>
    public IoBus<IActorRef> Attach(IoBus<IActorRef> bus, IActorRef fabric, IActorRef resetControl, Func<Props, string, IActorRef> spawn)
    {
        var props = _functions.ToDictionary(f => f.Key, f => PciFunctionActor.Props(f.Key, f.Value, fabric));
        var decodes = _functions.ToDictionary(f => f.Key, f => (IReadOnlyList<PciBarDecode>)f.Value.Config.Decodes().ToArray());
        var host = spawn(PciHostActor.Props(props, decodes, resetControl), "pci");
        bus = bus.AddPio(PciWindows.ConfigAddressPort, PciWindows.ConfigPortCount, host)
            .AddMmio(PciWindows.EcamBase, PciWindows.EcamSize, host)
            .AddMmio(Windows.Mmio32Base, Windows.Mmio32Size, host)
            .AddMmio(Windows.Mmio64Base, Windows.Mmio64Size, host);
        // The I/O window around ports other devices already hold (pc-testdev's IRQ lines at 0x2000).
        var taken = bus.Pio.Entries.Select(e => e.Range).Where(r => r.End > Windows.IoBase).OrderBy(r => r.Base).ToList();
        ulong from = Windows.IoBase;
        foreach (var r in taken.Append(new BusRange((ulong)Windows.IoLimit + 1, 1)))
        {
            if (r.Base > from) bus = bus.AddPio((ushort)from, (ushort)(Math.Min(r.Base, (ulong)Windows.IoLimit + 1) - from), host);
            from = Math.Max(from, r.End);
        }
        return bus;
    }
}
