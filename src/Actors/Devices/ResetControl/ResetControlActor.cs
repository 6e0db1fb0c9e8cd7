using Akka.Actor;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.ResetControl;

/// <summary>Port 0xCF9: a reset request becomes <see cref="LifecycleProtocol.ResetRequested"/> to the parent (the VM supervisor).</summary>
public sealed class ResetControlActor : ReceiveActor
{
    private readonly ResetControl _register = new();

    public static Props Props() => Akka.Actor.Props.Create(() => new ResetControlActor());

    public ResetControlActor()
    {
        Receive<PioRead>(m => Sender.Tell(new AccessResult(_register.Read())));
        Receive<PioWrite>(m =>
        {
            if (_register.Write((byte)m.Value)) Context.Parent.Tell(new LifecycleProtocol.ResetRequested("reset control register 0xCF9"));
        });
    }
}
