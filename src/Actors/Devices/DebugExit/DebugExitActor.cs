using Akka.Actor;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.DebugExit;

/// <summary>
/// The actor around a <see cref="DebugExit"/> model: a guest write becomes
/// <see cref="DebugExitProtocol.ExitRequested"/> to whoever ends the VM; reads answer all ones.
/// </summary>
public sealed class DebugExitActor : ReceiveActor
{
    /// <param name="reportTo">Who ends the VM (the VM supervisor).</param>
    public static Props Props(DebugExit model, IActorRef reportTo) =>
        Akka.Actor.Props.Create(() => new DebugExitActor(model, reportTo));

    public DebugExitActor(DebugExit model, IActorRef reportTo)
    {
        Receive<PioRead>(m => Sender.Tell(new AccessResult(model.Read(m.Size))));
        Receive<PioWrite>(m => reportTo.Tell(new DebugExitProtocol.ExitRequested(model.Write(m.Size, m.Value), m.Value), Self));
    }
}
