using Akka.Actor;
using Actorvisor.Actors.Cpu;
using Actorvisor.Actors.Devices.Uart;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Host.Vm;

/// <summary>
/// One VM: it allocates guest RAM, loads the kernel, creates the device actors and the vCPUs, puts the
/// devices on the bus and starts the vCPUs. It turns what the vCPUs report into the VM's end, with
/// bhyve's exit codes: every vCPU halted with interrupts off → Halted, a triple fault → TripleFault, a
/// host-side failure (bad image, device timeout, a device actor that threw) → Error. It tells
/// <c>reportTo</c> <see cref="VmProtocol.VmExited"/> once and stops; its children stop first, so vCPU
/// threads are gone before guest RAM is freed.
/// </summary>
public sealed class VmSupervisor : ReceiveActor
{
    /// <summary>COM1: ports 0x3F8-0x3FF, IRQ 4.</summary>
    public const ushort Com1Port = 0x3F8;
    public const int Com1Gsi = 4;
    public const int VcpuCount = 1;

    private readonly VmConfig _config;
    private readonly IActorRef _reportTo;
    private readonly HashSet<int> _haltedForGood = new();
    private GuestMemory? _memory;
    private bool _finished;
    /// <summary>The last exception a child failed with (the decider runs on this actor's thread).</summary>
    private Exception? _lastFailure;

    public static Props Props(VmConfig config, IActorRef reportTo) =>
        Akka.Actor.Props.Create(() => new VmSupervisor(config, reportTo));

    public VmSupervisor(VmConfig config, IActorRef reportTo)
    {
        _config = config;
        _reportTo = reportTo;

        Receive<VcpuProtocol.HaltedForGood>(m =>
        {
            _haltedForGood.Add(m.VcpuId);
            if (_haltedForGood.Count == VcpuCount) Finish(VmExitCode.Halted, null);
        });
        Receive<VcpuProtocol.ShutDown>(m => Finish(VmExitCode.TripleFault, $"vcpu {m.VcpuId}: triple fault ({m.Reason})"));
        Receive<VcpuProtocol.Failed>(m => Finish(VmExitCode.Error, $"vcpu {m.VcpuId}: {m.Error}"));
        Receive<VcpuProtocol.Started>(_ => { });
        Receive<Terminated>(t => Finish(VmExitCode.Error, _lastFailure is { } e
            ? $"{t.ActorRef.Path.Name} failed: {e.GetType().Name}: {e.Message}"
            : $"{t.ActorRef.Path.Name} stopped unexpectedly"));
    }

    protected override void PreStart()
    {
        try
        {
            Build();
        }
        catch (Exception e) when (e is KernelImageException or OutOfMemoryException or ArgumentException or BusRegistrationException)
        {
            Finish(VmExitCode.Error, e.Message);
        }
    }

    private void Build()
    {
        _memory = new GuestMemory(_config.MemorySize);
        var kernel = KernelLoader.LoadFile(_memory, _config.KernelPath);

        var irq = Context.ActorOf(UnroutedIrqActor.Props(), "irq-unrouted");
        var uart = Context.ActorOf(UartActor.Props(irq, Com1Gsi, _config.Console), "uart-0");
        var bus = IoBus<IActorRef>.Empty.AddPio(Com1Port, UartRegisters.RegisterCount, uart);

        foreach (var child in new[] { irq, uart }) Context.Watch(child);
        for (var id = 0; id < VcpuCount; id++)
        {
            var options = new VcpuOptions(id, _memory, bus, Boot: id == 0 ? kernel.Enter : null,
                ReadTimeout: _config.DeviceReadTimeout);
            var vcpu = Context.ActorOf(VcpuActor.Props(options), $"cpu-{id}");
            Context.Watch(vcpu);
            vcpu.Tell(VcpuProtocol.Start.Instance);
        }
    }

    /// <summary>
    /// A failing child ends the VM: restarting a device would silently reset registers the guest has
    /// programmed, and restarting a vCPU would lose its state. The child is stopped and its Terminated
    /// ends the VM with the failure as the message (the VM's exit reports it; Akka need not log it too).
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(e =>
    {
        _lastFailure = e;
        return Directive.Stop;
    }, loggingEnabled: false);

    private void Finish(VmExitCode code, string? message)
    {
        if (_finished) return;
        _finished = true;
        _reportTo.Tell(new VmProtocol.VmExited(_config.Name, code, message));
        Context.Stop(Self);
    }

    protected override void PostStop()
    {
        // Children (and so the vCPU threads) have stopped by now.
        _memory?.Dispose();
    }
}
