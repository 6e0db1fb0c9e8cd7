using System.Collections.Concurrent;

namespace Actorvisor.Actors.Cpu.Deterministic;

/// <summary>
/// The deterministic schedule (DESIGN.md, "vCPU threads and the run loop"): one thread runs every vCPU in
/// turn, a slice of at most <see cref="SliceInstructions"/> instructions each, in vCPU order; time is the
/// retired-instruction count (<see cref="ScheduleClock"/>); device actors run inline on the sending thread
/// (<see cref="InlineDispatcher"/>). Between slices it fires the timers that are due and hands the guest
/// its host input. A slice is cut short at the instruction where the next timer is due or a replayed input
/// was taken, so both land at the same instruction count on every run. When every vCPU waits (HLT), time
/// jumps to the next timer deadline; an idle guest costs no wall time.
/// </summary>
public sealed class DeterministicScheduler : IDisposable
{
    public const long DefaultSliceInstructions = 50_000;

    private readonly ScheduleClock _clock;
    private readonly object _gate = new();
    private readonly List<VcpuThread> _vcpus = new();
    private readonly HashSet<VcpuThread> _waiting = new();
    /// <summary>The waiting vCPUs that are halted (time may pass for them), as opposed to paused or not started.</summary>
    private readonly HashSet<VcpuThread> _halted = new();
    private readonly ManualResetEventSlim _signal = new(false);
    private readonly ConcurrentQueue<byte[]> _liveInput = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private readonly IReadOnlyList<HostInputLog.Entry>? _replay;
    private int _replayNext;
    private readonly TextWriter? _record;
    private bool _started;
    /// <summary>No slice runs: until the VM is built (so every vCPU joins before any runs), and once it ends.</summary>
    private volatile bool _frozen = true;

    /// <param name="replay">Input to hand the guest at recorded instruction counts; live input is then ignored.</param>
    /// <param name="record">Where live input is logged with its instruction count (<see cref="HostInputLog"/>).</param>
    public DeterministicScheduler(ScheduleClock clock, long sliceInstructions = DefaultSliceInstructions,
        IReadOnlyList<HostInputLog.Entry>? replay = null, TextWriter? record = null)
    {
        if (sliceInstructions <= 0) throw new ArgumentOutOfRangeException(nameof(sliceInstructions));
        _clock = clock;
        SliceInstructions = sliceInstructions;
        _replay = replay;
        _record = record;
        _record?.WriteLine(HostInputLog.Header);
        _thread = new Thread(Main) { IsBackground = true, Name = "vcpus-deterministic" };
    }

    public long SliceInstructions { get; }
    public ScheduleClock Clock => _clock;
    public RunDigest Digest { get; } = new();

    /// <summary>Where host input goes when its turn comes (the console UART); runs on the scheduler thread.</summary>
    public Action<byte[]>? DeliverInput { get; set; }

    /// <summary>Host input (any thread): handed to the guest at the next slice boundary, and recorded.</summary>
    public void PostInput(byte[] data)
    {
        _liveInput.Enqueue(data);
        Wake();
    }

    /// <summary>
    /// The VM is ending: no slice runs after the current one, which the vCPU leaves at the end of its block.
    /// Called from the supervisor, which in this schedule handles a device's or vCPU's request to end the run
    /// inline, at the instruction that made it: the run ends at the same instruction count every time.
    /// </summary>
    public void Freeze()
    {
        _frozen = true;
        VcpuThread[] all;
        lock (_gate) all = _vcpus.ToArray();
        foreach (var v in all) v.Cpu.Kick();
    }

    /// <summary>A new boot of the VM (after a guest reboot) runs on.</summary>
    public void Thaw()
    {
        _frozen = false;
        Wake();
    }

    /// <summary>Something may be runnable now (a vCPU's wake, input). Any thread.</summary>
    public void Wake() => _signal.Set();

    internal void Add(VcpuThread vcpu)
    {
        lock (_gate)
        {
            _vcpus.Add(vcpu);
            _vcpus.Sort((a, b) => a.Id.CompareTo(b.Id));
            if (!_started)
            {
                _started = true;
                _thread.Start();
            }
        }
        Wake();
    }

    /// <summary>Takes a stopping vCPU out of the schedule once its current slice (if any) has ended.</summary>
    internal bool Remove(VcpuThread vcpu, TimeSpan timeout)
    {
        if (!Monitor.TryEnter(_gate, timeout)) return false;
        try
        {
            _vcpus.Remove(vcpu);
            _waiting.Remove(vcpu);
            _halted.Remove(vcpu);
            return true;
        }
        finally
        {
            Monitor.Exit(_gate);
        }
    }

    private void Main()
    {
        while (!_stop.IsCancellationRequested)
        {
            _signal.Reset();
            VcpuThread[] turn;
            lock (_gate) turn = _vcpus.ToArray();
            var ran = false;
            foreach (var vcpu in turn)
            {
                lock (_gate)
                {
                    if (_stop.IsCancellationRequested) return;
                    if (_frozen || !_vcpus.Contains(vcpu)) continue;
                    ServiceBoundary();
                    if (_waiting.Contains(vcpu) && !vcpu.TakeWake()) continue;
                    ran |= RunSlice(vcpu);
                }
            }
            if (_frozen)
            {
                _signal.Wait();
                continue;
            }
            lock (_gate) ServiceBoundary();
            if (ran || _signal.IsSet) continue;
            // Everyone waits: if all are halted, jump to the next timer; else (or with no timer) sleep until
            // something from outside (input, a command). A paused vCPU stops guest time for all.
            bool allHalted;
            lock (_gate) allHalted = _vcpus.Count > 0 && _halted.Count == _vcpus.Count;
            if (allHalted && _clock.Timers.NextDeadline is { } deadline)
            {
                lock (_gate)
                {
                    _clock.SkipTo(deadline);
                    ServiceBoundary();
                }
                continue;
            }
            _signal.Wait();
        }
    }

    /// <summary>One slice of one vCPU; true if it can run on.</summary>
    private bool RunSlice(VcpuThread vcpu)
    {
        var budget = SliceInstructions;
        if (_clock.Timers.NextDeadline is { } deadline) budget = Math.Min(budget, _clock.InstructionsUntil(deadline));
        if (_replay is not null && _replayNext < _replay.Count)
            budget = Math.Min(budget, Math.Max(1, _replay[_replayNext].Retired - _clock.Retired));
        VcpuThread.StepOutcome outcome;
        _clock.BeginSlice(vcpu.Cpu);
        try
        {
            outcome = vcpu.Step(budget);
        }
        catch (OperationCanceledException) when (vcpu.Stopping)
        {
            outcome = VcpuThread.StepOutcome.Finished;
        }
        catch (Exception e)
        {
            vcpu.ReportCrash(e);
            outcome = VcpuThread.StepOutcome.Finished;
        }
        finally
        {
            _clock.EndSlice();
        }
        Digest.Add(RunDigest.Kind.SliceEnd, vcpu.Id, (ulong)vcpu.Cpu.InstructionCount, 0, vcpu.Cpu.Rip);
        switch (outcome)
        {
            case VcpuThread.StepOutcome.Ran:
                _waiting.Remove(vcpu);
                _halted.Remove(vcpu);
                return true;
            case VcpuThread.StepOutcome.Halted:
                _waiting.Add(vcpu);
                _halted.Add(vcpu);
                return false;
            case VcpuThread.StepOutcome.Waiting:
                _waiting.Add(vcpu);
                _halted.Remove(vcpu);
                return false;
            default:
                _vcpus.Remove(vcpu);
                _waiting.Remove(vcpu);
                _halted.Remove(vcpu);
                return false;
        }
    }

    /// <summary>At an instruction boundary: fire due timers, hand over due input.</summary>
    private void ServiceBoundary()
    {
        _clock.Timers.RunDue();
        if (_replay is not null)
        {
            while (_liveInput.TryDequeue(out _)) { } // a replay is the only input
            while (_replayNext < _replay.Count && _replay[_replayNext].Retired <= _clock.Retired)
                Deliver(_replay[_replayNext++].Data);
            return;
        }
        while (_liveInput.TryDequeue(out var data))
        {
            if (_record is not null)
            {
                _record.WriteLine(HostInputLog.Format(new HostInputLog.Entry(_clock.Retired, data)));
                _record.Flush();
            }
            Deliver(data);
        }
    }

    private void Deliver(byte[] data)
    {
        Digest.Add(RunDigest.Kind.Input, -1, (ulong)_clock.Retired, data.Length, 0);
        Digest.AddBytes(data);
        DeliverInput?.Invoke(data);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _signal.Set();
        if (_started && Thread.CurrentThread != _thread) _thread.Join(TimeSpan.FromSeconds(10));
        _record?.Dispose();
        Digest.Dispose();
    }
}
