using Akka.Actor;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Devices.I8042;

/// <summary>
/// The actor around an <see cref="I8042"/>: ports 0x60 and 0x64 (two one-byte ranges on the bus,
/// told apart by <see cref="PioRead.Port"/>), IRQ 1 and 12 as <see cref="InterruptProtocol.SetIrq"/> to
/// the ISA interrupt target, and a reset pulse as <see cref="LifecycleProtocol.ResetRequested"/> to the
/// parent (the VM supervisor).
/// </summary>
public sealed class I8042Actor : ReceiveActor
{
    public const int KeyboardIrq = 1;
    public const int AuxIrq = 12;

    private readonly I8042 _controller;

    public static Props Props(IActorRef isaTarget) => Akka.Actor.Props.Create(() => new I8042Actor(isaTarget));

    public I8042Actor(IActorRef isaTarget)
    {
        _controller = new I8042(new MessageIrqLine(isaTarget, KeyboardIrq, Self), new MessageIrqLine(isaTarget, AuxIrq, Self));

        Receive<PioRead>(m =>
        {
            var value = m.Port == I8042Registers.CommandPort ? _controller.ReadStatus() : _controller.ReadData();
            Sender.Tell(new AccessResult(value));
        });
        Receive<PioWrite>(m =>
        {
            var value = (byte)m.Value; // 8-bit ports: a wider write's upper bytes go to ports nobody here owns
            var reset = m.Port == I8042Registers.CommandPort ? _controller.WriteCommand(value) : _controller.WriteData(value);
            if (reset) Context.Parent.Tell(new LifecycleProtocol.ResetRequested("i8042"));
        });
        Receive<LifecycleProtocol.Reset>(_ => _controller.Reset());
    }
}
