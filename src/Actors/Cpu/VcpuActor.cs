using Akka.Actor;
using Akka.Event;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Cpu;

/// <summary>How to build one vCPU.</summary>
/// <param name="Boot">Puts the fresh CPU into its entry state (a loader's hand-over), before the thread starts.</param>
/// <param name="ReadTimeout">How long a device read may take before the VM stops with a host error.</param>
/// <param name="ReportTo">Who hears HaltedForGood / ShutDown / Failed; the parent when null.</param>
/// <param name="Interrupts">Where the CPU takes external interrupts from (its LAPIC); none when null. Whoever
/// makes one pending sends the vCPU <see cref="VcpuProtocol.Kick"/>.</param>
/// <param name="Lapic">This vCPU's LAPIC: it becomes the interrupt source and serves its register page on the
/// run thread; overrides <paramref name="Interrupts"/>.</param>
/// <param name="Model">The CPU model (with the VM's topology); <see cref="CpuModel.Default"/> when null.</param>
/// <param name="Scheduler">The deterministic schedule to run in (its clock drives the TSC), instead of an own thread.</param>
public sealed record VcpuOptions(
    int Id, GuestMemory Memory, IoBus<IActorRef> Bus, Action<SoftwareCpu>? Boot = null,
    TimeSpan? ReadTimeout = null, IActorRef? ReportTo = null, IInterruptSource? Interrupts = null,
    Lapic.VcpuLapic? Lapic = null, CpuModel? Model = null, VcpuTotals? Totals = null,
    Deterministic.DeterministicScheduler? Scheduler = null, Actorvisor.Kernel.Faults.FaultEngine? Faults = null)
{
    /// <summary>
    /// Long enough that a device actor starved by a loaded host (several VMs on two cores) is not taken for a
    /// dead one; a device that never answers still ends the VM.
    /// </summary>
    public static readonly TimeSpan DefaultReadTimeout = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The control face of one vCPU. It owns a <see cref="SoftwareCpu"/> and the dedicated thread that runs
/// it; the actor itself never runs guest code. Commands (Start, Suspend, Resume, GetRegisters, SetRegister, GetCounters,
/// Stop, UpdateBus) are queued for the run thread, which answers the sender directly. The run thread reports
/// HaltedForGood, ShutDown and Failed to the parent.
/// </summary>
public sealed class VcpuActor : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly ActorBusPlatform _platform;
    private readonly VcpuThread _thread;
    private readonly Lapic.VcpuLapic? _lapic;
    private readonly SoftwareCpu _cpu;
    private readonly VcpuTotals? _totals;

    public static Props Props(VcpuOptions options) => Akka.Actor.Props.Create(() => new VcpuActor(options));

    public VcpuActor(VcpuOptions o)
    {
        _platform = new ActorBusPlatform(Context.System, o.Bus, Self, o.ReadTimeout ?? VcpuOptions.DefaultReadTimeout);
        _platform.Telemetry = new BusAccessTelemetry(new Actorvisor.Kernel.Telemetry.VcpuMetrics(
            Actorvisor.Kernel.Telemetry.TelemetryNames.VmFromSupervisor(Context.Parent.Path.Name), o.Id));
        var cpu = new SoftwareCpu(o.Id, o.Memory, _platform, o.Model);
        _cpu = cpu;
        _totals = o.Totals;
        if (o.Interrupts is not null) cpu.Interrupts = o.Interrupts;
        _platform.Faults = o.Faults;
        if (o.Scheduler is { } scheduler)
        {
            cpu.TscClock = scheduler.Clock;
            _platform.Digest = scheduler.Digest;
        }
        o.Boot?.Invoke(cpu);
        _thread = new VcpuThread(cpu, _platform, Self, o.ReportTo ?? Context.Parent, o.Lapic is { } l ? l.ServiceBetweenRuns : null,
            o.Scheduler);
        _lapic = o.Lapic;
        if (o.Lapic is not null)
        {
            cpu.Interrupts = o.Lapic;
            _platform.Local = o.Lapic;
            o.Lapic.Attach(cpu, _platform, _thread.Wake);
        }

        Receive<VcpuProtocol.Kick>(_ => _thread.Wake());
        Receive<VcpuProtocol.Start>(m =>
        {
            _totals?.MarkStarted();
            _thread.Post(m, Sender);
        });
        Receive<LifecycleProtocol.Suspend>(m => _thread.Post(m, Sender));
        Receive<LifecycleProtocol.Resume>(m => _thread.Post(m, Sender));
        Receive<VcpuProtocol.GetRegisters>(m => _thread.Post(m, Sender));
        Receive<VcpuProtocol.SetRegister>(m => _thread.Post(m, Sender));
        Receive<VcpuProtocol.GetCounters>(m => _thread.Post(m, Sender));
        Receive<VcpuProtocol.UpdateBus>(m => _thread.Post(m, Sender));
        Receive<VcpuProtocol.Stop>(m => _thread.Post(m, Sender));
        Receive<VcpuProtocol.OnThread>(m => _thread.Post(m, Sender));
        Receive<VcpuProtocol.GetCaps>(m => _thread.Post(m, Sender));
        Receive<VcpuProtocol.SetCap>(m => _thread.Post(m, Sender));
    }

    protected override void PreStart() => _thread.Start();

    protected override void PostStop()
    {
        // The thread reads guest memory: it must be gone before the VM frees it.
        if (!_thread.StopAndJoin(TimeSpan.FromSeconds(10)))
            _log.Error("vcpu {0}: run thread did not stop within 10 s", _thread.Id);
        else
        {
            _totals?.AddInstructions(_cpu.InstructionCount);
            _totals?.AddCompiledInstructions(_cpu.CompiledInstructions);
            _totals?.AddDeviceReads(_platform.DeviceReads, _platform.DeviceReadWaitTicks);
        }
        _platform.Dispose();
        _lapic?.Dispose(); // its host timer: the run thread that could re-arm it is gone
    }
}
