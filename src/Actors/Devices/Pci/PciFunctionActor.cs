using Akka.Actor;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.Pci;

/// <summary>
/// The actor around one <see cref="IPciFunction"/> (pci/&lt;bdf&gt;): configuration and BAR accesses forwarded
/// by the PCI host become model calls, reads are answered to the original sender (the vCPU), and after every
/// configuration write the function's BAR decodes go back to the host, which holds accesses until it has them.
/// MSIs go to the interrupt fabric; work a model posts runs here. When the actor stops (the VM ends or resets in
/// place), a disposable function releases its host resources (an image file, a TAP, an I/O thread).
/// </summary>
public sealed class PciFunctionActor : ReceiveActor
{
    private readonly IPciFunction _function;

    public static Props Props(PciAddress address, IPciFunction function, IActorRef fabric) =>
        Akka.Actor.Props.Create(() => new PciFunctionActor(address, function, fabric));

    public PciFunctionActor(PciAddress address, IPciFunction function, IActorRef fabric)
    {
        _function = function;
        var self = Self;
        function.Connect(new PciFunctionContext(
            (a, d) => fabric.Tell(new InterruptProtocol.Msi(a, d, default, Actorvisor.Kernel.Telemetry.InterruptLatency.Stamp()), self),
            action => self.Tell(new PciProtocol.Run(action))));
        PciProtocol.Decodes Decodes() => new(address, function.Config.Decodes().ToArray());

        Receive<PciProtocol.ConfigRead>(m => Sender.Tell(new AccessResult(function.ReadConfig(m.Offset, m.Size))));
        Receive<PciProtocol.ConfigWrite>(m =>
        {
            function.WriteConfig(m.Offset, m.Size, m.Value);
            Sender.Tell(Decodes());
        });
        Receive<PciProtocol.BarRead>(m => Sender.Tell(new AccessResult(function.ReadBar(m.Bar, m.Offset, m.Size))));
        Receive<PciProtocol.BarWrite>(m => function.WriteBar(m.Bar, m.Offset, m.Size, m.Value));
        Receive<PciProtocol.GetDecodes>(_ => Sender.Tell(Decodes()));
        Receive<PciProtocol.Run>(m => m.Action());
    }

    protected override void PostStop() => (_function as IDisposable)?.Dispose();
}
