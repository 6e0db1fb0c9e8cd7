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
internal sealed class VcpuThread
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

    public VcpuThread(SoftwareCpu cpu, ActorBusPlatform platform, IActorRef self, IActorRef reportTo, Action? service = null)
    {
        _service = service;
        _cpu = cpu;
        _platform = platform;
        _platform.Cancel = _stopping.Token;
        _self = self;
        _reportTo = reportTo;
        _thread = new Thread(Main) { IsBackground = true, Name = $"vcpu-{cpu.Id}" };
    }

    public int Id => _cpu.Id;

    public void Start() => _thread.Start();

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
    }

    /// <summary>Stops the thread (a read waiting on a device is cancelled) and waits for it to end.</summary>
    public bool StopAndJoin(TimeSpan timeout)
    {
        _stopping.Cancel();
        Wake();
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
                DrainCommands();
                if (_state == State.Finished) break;
                if (_state != State.Running)
                {
                    _wake.Wait();
                    continue;
                }
                RunOnce();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopped while a read waited on a device.
        }
        catch (Exception e)
        {
            // The thread must never die silently: the parent decides what a host error means for the VM.
            _reportTo.Tell(new VcpuProtocol.Failed(_cpu.Id, $"{e.GetType().Name}: {e.Message}"), _self);
        }
    }

    private void RunOnce()
    {
        CpuExitReason exit;
        try
        {
            _service?.Invoke();
            if (_cpu.WaitingForSipi)
            {
                // Wait-for-SIPI runs nothing; like HLT with interrupts off, only another CPU can end it.
                ReportHaltedForGood();
                WaitHalted();
                return;
            }
            // Started by a SIPI (or otherwise no longer halted) since the halt was reported: it runs again.
            if (!_cpu.Halted) ReportWoke();
            var runStart = System.Diagnostics.Stopwatch.GetTimestamp();
            exit = _cpu.Run();
            _platform.Telemetry.Metrics.RunTicks += System.Diagnostics.Stopwatch.GetTimestamp() - runStart;
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            throw;
        }
        catch (DeviceTimeoutException e)
        {
            Fail(e.Message);
            return;
        }
        catch (Exception e)
        {
            Fail($"{e.GetType().Name}: {e.Message} at {_cpu}\n{e.StackTrace}");
            return;
        }
        if (!_cpu.Halted) ReportWoke();
        switch (exit)
        {
            case CpuExitReason.Halted:
                if (!_cpu.IF) ReportHaltedForGood();
                // Wait for an interrupt, an NMI or a command; Run takes the event and resumes.
                _platform.Telemetry.Metrics.Exits[(int)Actorvisor.Kernel.Telemetry.ExitReason.Halt]++;
                WaitHalted();
                break;
            case CpuExitReason.Kicked:
                _platform.Telemetry.Metrics.Exits[(int)Actorvisor.Kernel.Telemetry.ExitReason.Kick]++;
                break;
            case CpuExitReason.Shutdown:
                _state = State.ShutDown;
                _reportTo.Tell(new VcpuProtocol.ShutDown(_cpu.Id, _cpu.ShutdownReason ?? "triple fault"), _self);
                break;
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
                        _platform.UnassignedMmioWrites, _platform.ReplyTarget.StrayReplies), _self);
                    break;
                case VcpuProtocol.UpdateBus u:
                    _platform.Bus = u.Bus;
                    break;
                case VcpuProtocol.Stop:
                    _state = State.Finished;
                    c.ReplyTo.Tell(new VcpuProtocol.Stopped(_cpu.Id), _self);
                    break;
            }
        }
    }

    private CpuRegisters Snapshot() => new(
        (ulong[])_cpu.Gprs.Clone(), _cpu.Rip, _cpu.GetFlags(), _cpu.Segs[Seg.CS].Selector, _cpu.Segs[Seg.SS].Selector,
        _cpu.Bitness, _cpu.Cpl, _cpu.Cr0, _cpu.Cr2, _cpu.Cr3, _cpu.Cr4, _cpu.EferValue, _cpu.InstructionCount, _cpu.Halted,
        _cpu.WaitingForSipi);
}
