using Akka.Actor;
using Actorvisor.Actors.Cpu;
using Actorvisor.Actors.Cpu.Lapic;
using Actorvisor.Actors.Devices.Uart;
using Actorvisor.Kernel.Messages;
using BenchmarkDotNet.Attributes;
using static Actorvisor.Kernel.Messages.AccessProtocol;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Bench;

/// <summary>
/// The device side of the hot paths: a port read through the UART actor (the message round trip a vCPU
/// thread blocks on, as <see cref="ActorBusPlatform"/> makes it), and an interrupt through the LAPIC as the
/// vCPU thread handles it (accept a fixed vector, see it pending, acknowledge, EOI).
/// </summary>
public class MicroDevices
{
    private ActorSystem? _system;
    private IActorRef? _uart;
    private AccessReplyTarget? _reply;
    private Lapic? _lapic;
    private readonly PioRead _scratchRead = new(0x3FF, 7, 1, 0);

    [GlobalSetup]
    public void Setup()
    {
        _system = ActorSystem.Create("micro", "akka.loglevel = WARNING");
        _uart = _system.ActorOf(UartActor.Props(ActorRefs.Nobody, 4, Stream.Null), "uart-0");
        _reply = new AccessReplyTarget(_system);
        _lapic = new Lapic(0, new NoOutput(), TimeProvider.System, 100_000_000, _ => { });
        _lapic.EnterVirtualWireMode();
        _lapic.Write(LapicRegisters.Svr, 4, 0x1FF);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _reply?.Dispose();
        _lapic?.Dispose();
        _system?.Terminate().Wait(TimeSpan.FromSeconds(10));
    }

    [Benchmark]
    public ulong PortReadThroughTheUartActor() =>
        _reply!.Request(_uart!, _scratchRead, TimeSpan.FromSeconds(5), CancellationToken.None, () => "uart scratch");

    [Benchmark]
    public int LapicAcceptAcknowledgeEoi()
    {
        _lapic!.Accept(DeliveryMode.Fixed, 0x41, TriggerMode.Edge);
        if (!_lapic.HasInterrupt) throw new InvalidOperationException("the accepted vector is not pending");
        var v = _lapic.Acknowledge();
        _lapic.Write(LapicRegisters.Eoi, 4, 0);
        return v;
    }

    private sealed class NoOutput : ILapicOutput
    {
        public void SendIpi(LapicDeliver message) { }
        public void BroadcastEoi(byte vector) { }
        public void Nmi() { }
        public void Init() { }
        public void StartUp(byte vector) { }
    }
}
