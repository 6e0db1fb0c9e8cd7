using Akka.Actor;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.FwCfg;

/// <summary>The actor around a <see cref="FwCfg"/> model (selector and data ports; the model takes absolute ports).</summary>
public sealed class FwCfgActor : ReceiveActor
{
    public static Props Props(ulong ramSize, int cpus, int maxCpus) =>
        Akka.Actor.Props.Create(() => new FwCfgActor(new FwCfg(ramSize, cpus, maxCpus)));

    public FwCfgActor(FwCfg model)
    {
        Receive<PioRead>(m => Sender.Tell(new AccessResult(model.Read(m.Port, m.Size))));
        Receive<PioWrite>(m => model.Write(m.Port, m.Size, m.Value));
    }
}
