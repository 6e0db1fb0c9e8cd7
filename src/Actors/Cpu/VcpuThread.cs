using System.Collections.Concurrent;
using Akka.Actor;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Messages;

namespace Actorvisor.Actors.Cpu;

/// <summary>
/// The dedicated OS thread of one vCPU (never a thread-pool thread: it blocks on device reads and on HLT).
/// It runs <see cref="SoftwareCpu.Run"/> in a loop; between runs it takes control commands from a queue
/// that the <see cref="VcpuActor"/> fills and then kicks the CPU. HLT parks the thread on an event that a
/// kick, a command or an interrupt (the LAPIC calling <see cref="Wake"/>) sets.
/// It is the only thread that touches the <see cref="SoftwareCpu"/>.
/// </summary>
internal sealed partial class VcpuThread
{
    private enum State { NotStarted, Running, Paused, ShutDown, Failed, Finished }

    private readonly SoftwareCpu _cpu;
    private readonly ActorBusPlatform _platform;
    private readonly IActorRef _self;
    private readonly IActorRef _reportTo;
    private readonly Thread _thread;
    private readonly ConcurrentQueue<(object Command, IActorRef ReplyTo)> _commands = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly CancellationTokenSource _stopping = new();
    /// <summary>Applies what arrived for this vCPU's local devices (the LAPIC's inbox) before each run.</summary>
    private readonly Action? _service;
    private State _state = State.NotStarted;
    private bool _haltReported;

    /// <summary>The deterministic schedule this vCPU runs in, instead of on its own thread; null for real time.</summary>
    private readonly Deterministic.DeterministicScheduler? _scheduler;

    public VcpuThread(SoftwareCpu cpu, ActorBusPlatform platform, IActorRef self, IActorRef reportTo, Action? service = null,
        Deterministic.DeterministicScheduler? scheduler = null)
    {
        _scheduler = scheduler;
        _service = service;
        _cpu = cpu;
        _platform = platform;
        _platform.Cancel = _stopping.Token;
        _self = self;
        _reportTo = reportTo;
        _thread = new Thread(Main) { IsBackground = true, Name = $"vcpu-{cpu.Id}" };
    }

    public int Id => _cpu.Id;

    public SoftwareCpu Cpu => _cpu;

    /// <summary>Starts the own thread, or joins the deterministic schedule.</summary>
    public void Start()
    {
        if (_scheduler is not null) _scheduler.Add(this);
        else _thread.Start();
    }

    /// <summary>Set by <see cref="Wake"/>; the deterministic scheduler takes it to know the vCPU has something to do.</summary>
    internal bool TakeWake()
    {
        if (!_wake.IsSet) return false;
        _wake.Reset();
        return true;
    }

    internal bool Stopping => _stopping.IsCancellationRequested;

    /// <summary>Queues a command for the run thread and gets its attention. Any thread.</summary>
    public void Post(object command, IActorRef replyTo)
    {
        _commands.Enqueue((command, replyTo));
        Wake();
    }

    /// <summary>Makes a running CPU return at its next block boundary and a halted one re-check. Any thread.</summary>
    public void Wake()
    {
        _cpu.Kick();
        _wake.Set();
        _scheduler?.Wake();
    }

    /// <summary>Stops the thread (a read waiting on a device is cancelled) and waits for it to end.</summary>
    public bool StopAndJoin(TimeSpan timeout)
    {
        _stopping.Cancel();
        Wake();
        if (_scheduler is not null) return _scheduler.Remove(this, timeout);
        return !_thread.IsAlive || _thread.Join(timeout);
    }

    private void Main()
    {
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                // Reset before looking at the queue: a Wake after this point is seen by the next Wait.
                _wake.Reset();
                var outcome = Step(long.MaxValue);
                if (outcome == StepOutcome.Finished) break;
                if (outcome == StepOutcome.Halted) WaitHalted();
                else if (outcome == StepOutcome.Waiting) _wake.Wait();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopped while a read waited on a device.
        }
        catch (Exception e)
        {
            ReportCrash(e);
        }
    }

    /// <summary>The thread must never die silently: the parent decides what a host error means for the VM.</summary>
    internal void ReportCrash(Exception e) =>
        _reportTo.Tell(new VcpuProtocol.Failed(_cpu.Id, $"{e.GetType().Name}: {e.Message}"), _self);

    /// <summary>What one <see cref="Step"/> left the vCPU doing.</summary>
    internal enum StepOutcome
    {
        /// <summary>It ran (or was kicked) and can run on.</summary>
        Ran,
        /// <summary>Halted or waiting for SIPI: nothing to do until an interrupt (or a command) <see cref="Wake"/>s it.
        /// Guest time may pass meanwhile.</summary>
        Halted,
        /// <summary>Not running at all (not started, paused, failed, shut down) until a command: guest time stands still for it.</summary>
        Waiting,
        /// <summary>Stopped for good.</summary>
        Finished,
    }

    /// <summary>
    /// One turn of the run thread: the queued commands, then up to <paramref name="budget"/> instructions.
    /// It never blocks, except on a device read. The own thread's loop calls it, or, in the deterministic
    /// schedule, the <see cref="Deterministic.DeterministicScheduler"/>, which owns no thread per vCPU.
    /// An <see cref="OperationCanceledException"/> when the vCPU is stopping propagates.
    /// </summary>
    internal StepOutcome Step(long budget)
    {
        DrainCommands();
        if (_state == State.Finished) return StepOutcome.Finished;
        if (_state != State.Running) return StepOutcome.Waiting;
        CpuExitReason exit;
        try
        {
            _service?.Invoke();
            if (_cpu.WaitingForSipi)
            {
                // Wait-for-SIPI runs nothing; like HLT with interrupts off, only another CPU can end it.
                ReportHaltedForGood();
                return StepOutcome.Halted;
            }
            // Started by a SIPI (or otherwise no longer halted) since the halt was reported: it runs again.
            if (!_cpu.Halted) ReportWoke();
            var runStart = System.Diagnostics.Stopwatch.GetTimestamp();
            exit = _caps.SingleStep ? RunOneInstruction(budget) : _cpu.Run(budget);
            _platform.Telemetry.Metrics.RunTicks += System.Diagnostics.Stopwatch.GetTimestamp() - runStart;
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            throw;
        }
        catch (DeviceTimeoutException e)
        {
            Fail(e.Message);
            return StepOutcome.Waiting;
        }
        catch (Exception e)
        {
            Fail($"{e.GetType().Name}: {e.Message} at {_cpu}\n{e.StackTrace}");
            return StepOutcome.Waiting;
        }
        if (!_cpu.Halted) ReportWoke();
        switch (exit)
        {
            case CpuExitReason.Halted:
                if (!_cpu.IF) ReportHaltedForGood();
                // hlt_exit off: no exit, the thread polls for the wake-up (a guest's HLT without HLT exiting).
                if (!_caps.HltExit) return PollHalted();
                // Wait for an interrupt, an NMI or a command; Run takes the event and resumes.
                _platform.Telemetry.Metrics.Exits[(int)Actorvisor.Kernel.Telemetry.ExitReason.Halt]++;
                return StepOutcome.Halted;
            case CpuExitReason.Kicked:
                _platform.Telemetry.Metrics.Exits[(int)Actorvisor.Kernel.Telemetry.ExitReason.Kick]++;
                return StepOutcome.Ran;
            case CpuExitReason.Shutdown:
                _state = State.ShutDown;
                _reportTo.Tell(new VcpuProtocol.ShutDown(_cpu.Id, _cpu.ShutdownReason ?? "triple fault"), _self);
                return StepOutcome.Waiting;
            default:
                return StepOutcome.Ran;
        }
    }

    /// <summary>Parks the halted thread until a wake-up, counting the time as halt time.</summary>
    private void WaitHalted()
    {
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        _wake.Wait();
        _platform.Telemetry.Metrics.HaltTicks += System.Diagnostics.Stopwatch.GetTimestamp() - start;
    }

    private void ReportHaltedForGood()
    {
        if (_haltReported) return;
        _haltReported = true;
        _reportTo.Tell(new VcpuProtocol.HaltedForGood(_cpu.Id, _cpu.Rip), _self);
    }

    private void ReportWoke()
    {
        if (!_haltReported) return;
        _haltReported = false;
        _reportTo.Tell(new VcpuProtocol.Woke(_cpu.Id), _self);
    }

    private void Fail(string error)
    {
        _state = State.Failed;
        _reportTo.Tell(new VcpuProtocol.Failed(_cpu.Id, error), _self);
    }

    private void DrainCommands()
    {
        while (_commands.TryDequeue(out var c))
        {
            switch (c.Command)
            {
                case VcpuProtocol.Start:
                    if (_state == State.NotStarted) _state = State.Running;
                    c.ReplyTo.Tell(new VcpuProtocol.Started(_cpu.Id), _self);
                    break;
                case LifecycleProtocol.Suspend:
                    if (_state == State.Running) _state = State.Paused;
                    if (_state == State.Paused) c.ReplyTo.Tell(new LifecycleProtocol.Suspended(_cpu.Id), _self);
                    else c.ReplyTo.Tell(new LifecycleProtocol.NotAllowed($"vcpu {_cpu.Id} is {_state}, not running"), _self);
                    break;
                case LifecycleProtocol.Resume:
                    if (_state == State.Paused) _state = State.Running;
                    if (_state == State.Running) c.ReplyTo.Tell(new LifecycleProtocol.Resumed(_cpu.Id), _self);
                    else c.ReplyTo.Tell(new LifecycleProtocol.NotAllowed($"vcpu {_cpu.Id} is {_state}, not paused"), _self);
                    break;
                case VcpuProtocol.GetRegisters:
                    c.ReplyTo.Tell(new VcpuProtocol.Registers(_cpu.Id, Snapshot()), _self);
                    break;
                case VcpuProtocol.SetRegister r:
                    if (_cpu.TrySetRegister(r.Name, r.Value))
                        c.ReplyTo.Tell(new VcpuProtocol.RegisterSet(_cpu.Id, r.Name, r.Value), _self);
                    else
                        c.ReplyTo.Tell(new LifecycleProtocol.NotAllowed(
                            $"unknown register '{r.Name}'; known: {string.Join(", ", SoftwareCpu.RegisterNames)}"), _self);
                    break;
                case VcpuProtocol.GetCounters:
                    c.ReplyTo.Tell(new VcpuProtocol.Counters(_cpu.Id, _cpu.InstructionCount,
                        _platform.UnassignedPortReads, _platform.UnassignedPortWrites, _platform.UnassignedMmioReads,
                        _platform.UnassignedMmioWrites, _platform.ReplyTarget.StrayReplies)
                    {
                        Exits = ExitCounts(), Accesses = AccessCounts(),
                    }, _self);
                    break;
                case VcpuProtocol.UpdateBus u:
                    _platform.Bus = u.Bus;
                    break;
                case VcpuProtocol.OnThread o:
                    c.ReplyTo.Tell(RunOnThread(o), _self);
                    break;
                case VcpuProtocol.GetCaps:
                    c.ReplyTo.Tell(Caps(), _self);
                    break;
                case VcpuProtocol.SetCap sc:
                    c.ReplyTo.Tell(SetCap(sc), _self);
                    break;
                case VcpuProtocol.Stop:
                    _state = State.Finished;
                    c.ReplyTo.Tell(new VcpuProtocol.Stopped(_cpu.Id), _self);
                    break;
            }
        }
    }

    /// <summary>A host-side look at (or change of) the CPU between runs, with the thread's state; a throw becomes the reply's error.</summary>
    private VcpuProtocol.OnThreadResult RunOnThread(VcpuProtocol.OnThread o)
    {
        try
        {
            return new(_cpu.Id, _state.ToString(), o.Work(_cpu), null);
        }
        catch (Exception e)
        {
            return new(_cpu.Id, _state.ToString(), null, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private CpuRegisters Snapshot() => new(
        (ulong[])_cpu.Gprs.Clone(), _cpu.Rip, _cpu.GetFlags(), _cpu.Segs[Seg.CS].Selector, _cpu.Segs[Seg.SS].Selector,
        _cpu.Bitness, _cpu.Cpl, _cpu.Cr0, _cpu.Cr2, _cpu.Cr3, _cpu.Cr4, _cpu.EferValue, _cpu.InstructionCount, _cpu.Halted,
        _cpu.WaitingForSipi);
}
