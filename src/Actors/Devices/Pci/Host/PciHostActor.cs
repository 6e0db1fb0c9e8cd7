using Akka.Actor;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.Pci.Host;

/// <summary>
/// The PCI host bridge's decoder ("pci"): the bus routes to it the configuration ports 0xCF8-0xCFF, the ECAM
/// window and the whole I/O and memory windows BARs may occupy; it forwards each access to the function actor
/// that decodes it now, keeping the vCPU as the sender, so the function's answer goes straight back to the
/// vCPU (one hop more than a device on the bus, none on the way back).
/// <para>
/// Why a decoder actor and not BAR ranges on the bus: the bus is an immutable snapshot per vCPU, built once;
/// BARs move whenever the guest writes them (Linux sizes every BAR with decode off and may reassign it), and
/// decode follows the command register. Publishing a new bus to every vCPU on each BAR write would race with
/// accesses already in flight on other vCPUs. Here the current decode is this actor's state, and ordering is
/// by construction: a configuration write is forwarded, and every later access waits (stashed) until the
/// function has answered with its new decodes, so an access the guest makes after moving or enabling a BAR
/// reaches the BAR's new place, and never the old one.
/// </para>
/// Port 0xCF9 is not configuration space but the reset control register (a byte port inside 0xCF8-0xCFB, as on
/// PIIX/ICH chipsets): its byte accesses go to the reset control actor.
/// </summary>
public sealed class PciHostActor : ReceiveActor, IWithUnboundedStash
{
    private readonly ConfigMechanism1 _mechanism = new();
    private readonly PciDecodeMap _decodes = new();
    private readonly Dictionary<PciAddress, IActorRef> _functions = new();
    private readonly IActorRef? _resetControl;
    private int _awaitingDecodes;

    public IStash Stash { get; set; } = null!;

    /// <param name="functions">The function actors to create as children (pci/&lt;bdf&gt;), by address.</param>
    /// <param name="initialDecodes">Where each function's BARs decode at start (placed by the platform).</param>
    /// <param name="resetControl">The owner of port 0xCF9, or null.</param>
    public static Props Props(IReadOnlyDictionary<PciAddress, Props> functions,
        IReadOnlyDictionary<PciAddress, IReadOnlyList<PciBarDecode>> initialDecodes, IActorRef? resetControl) =>
        Akka.Actor.Props.Create(() => new PciHostActor(functions, initialDecodes, resetControl));

    public PciHostActor(IReadOnlyDictionary<PciAddress, Props> functions,
        IReadOnlyDictionary<PciAddress, IReadOnlyList<PciBarDecode>> initialDecodes, IActorRef? resetControl)
    {
        foreach (var (address, props) in functions) _functions[address] = Context.ActorOf(props, address.ToString());
        _resetControl = resetControl;
        foreach (var (f, d) in initialDecodes) _decodes.Set(f, d);

        Receive<PciProtocol.Decodes>(m =>
        {
            _decodes.Set(m.Function, m.Bars);
            if (_awaitingDecodes > 0 && --_awaitingDecodes == 0) Stash.UnstashAll();
        });
        Receive<PioRead>(m => Hold(m) || PortRead(m));
        Receive<PioWrite>(m => Hold(m) || PortWrite(m));
        Receive<MmioRead>(m => Hold(m) || MemoryRead(m));
        Receive<MmioWrite>(m => Hold(m) || MemoryWrite(m));
    }

    /// <summary>Keeps an access back while a configuration write's new decodes are on their way.</summary>
    private bool Hold(object _)
    {
        if (_awaitingDecodes == 0) return false;
        Stash.Stash();
        return true;
    }

    private bool PortRead(PioRead m)
    {
        switch (m.Port)
        {
            case PciWindows.ResetControlPort when m.Size == 1 && _resetControl is not null:
                _resetControl.Forward(m with { Offset = 0 });
                break;
            case >= PciWindows.ConfigAddressPort and < PciWindows.ConfigDataPort:
                Reply(_mechanism.ReadAddress(m.Port - PciWindows.ConfigAddressPort, m.Size) ?? uint.MaxValue, m.Size);
                break;
            case >= PciWindows.ConfigDataPort and < PciWindows.ConfigDataPort + 4:
                ConfigRead(_mechanism.Decode(m.Port - PciWindows.ConfigDataPort, m.Size), m.Size);
                break;
            default:
                if (_decodes.TryFind(true, m.Port, m.Size, out var f, out var bar, out var offset))
                    _functions[f].Forward(new PciProtocol.BarRead(bar, offset, m.Size));
                else Reply(ulong.MaxValue, m.Size);
                break;
        }
        return true;
    }

    private bool PortWrite(PioWrite m)
    {
        switch (m.Port)
        {
            case PciWindows.ResetControlPort when m.Size == 1 && _resetControl is not null:
                _resetControl.Forward(m with { Offset = 0 });
                break;
            case >= PciWindows.ConfigAddressPort and < PciWindows.ConfigDataPort:
                _mechanism.WriteAddress(m.Port - PciWindows.ConfigAddressPort, m.Size, m.Value);
                break;
            case >= PciWindows.ConfigDataPort and < PciWindows.ConfigDataPort + 4:
                ConfigWrite(_mechanism.Decode(m.Port - PciWindows.ConfigDataPort, m.Size), m.Size, m.Value);
                break;
            default:
                if (_decodes.TryFind(true, m.Port, m.Size, out var f, out var bar, out var offset))
                    _functions[f].Forward(new PciProtocol.BarWrite(bar, offset, m.Size, m.Value));
                break;
        }
        return true;
    }

    private bool MemoryRead(MmioRead m)
    {
        if (m.Address is >= PciWindows.EcamBase and < PciWindows.EcamBase + PciWindows.EcamSize)
            ConfigRead(ConfigMechanism1.DecodeEcam(m.Address - PciWindows.EcamBase, m.Size), m.Size);
        else if (_decodes.TryFind(false, m.Address, m.Size, out var f, out var bar, out var offset))
            _functions[f].Forward(new PciProtocol.BarRead(bar, offset, m.Size));
        else Reply(ulong.MaxValue, m.Size);
        return true;
    }

    private bool MemoryWrite(MmioWrite m)
    {
        if (m.Address is >= PciWindows.EcamBase and < PciWindows.EcamBase + PciWindows.EcamSize)
            ConfigWrite(ConfigMechanism1.DecodeEcam(m.Address - PciWindows.EcamBase, m.Size), m.Size, (uint)m.Value);
        else if (_decodes.TryFind(false, m.Address, m.Size, out var f, out var bar, out var offset))
            _functions[f].Forward(new PciProtocol.BarWrite(bar, offset, m.Size, m.Value));
        return true;
    }

    /// <summary>A read of a function that is not there (or a cycle that is not one) reads all ones (PCI 3.0, 6.1: master abort).</summary>
    private void ConfigRead(ConfigCycle? cycle, byte size)
    {
        if (cycle is { } c && _functions.TryGetValue(c.Function, out var f)) f.Forward(new PciProtocol.ConfigRead(c.Offset, size));
        else Reply(ulong.MaxValue, size);
    }

    private void ConfigWrite(ConfigCycle? cycle, byte size, uint value)
    {
        if (cycle is not { } c || !_functions.TryGetValue(c.Function, out var f)) return;
        _awaitingDecodes++;
        f.Tell(new PciProtocol.ConfigWrite(c.Offset, size, value), Self);
    }

    /// <summary>An answer of the host itself (no function decodes the access): <paramref name="size"/> bytes of it.</summary>
    private void Reply(ulong value, int size) => Sender.Tell(new AccessResult(size >= 8 ? value : value & ((1UL << 8 * size) - 1)));

    /// <summary>A failing function fails the host, and so the VM: restarting it would forget what the guest programmed.</summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Escalate);
}
