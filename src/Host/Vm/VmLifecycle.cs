namespace Actorvisor.Host.Vm;

/// <summary>
/// The VM's lifecycle state machine, one per VM for its whole run (it outlives the supervisor instances a
/// reset builds). Every transition, whoever asks for it (a control client, the guest's own reset or power-off,
/// a triple fault, SIGTERM), goes through <see cref="TryMove"/> and the table below; a request the current
/// state does not allow is refused with a reason and changes nothing.
/// <code>
/// Starting   → Running | Resetting | PoweredOff | Failed
/// Running    → Suspending | Resetting | PoweredOff | Failed
/// Suspending → Suspended | Resetting | PoweredOff | Failed
/// Suspended  → Running | Resetting | PoweredOff | Failed
/// Resetting  → Starting | PoweredOff | Failed
/// PoweredOff, Failed: final
/// </code>
/// Suspend is a barrier, as bhyve's VM_SUSPEND: <see cref="BeginSuspend"/> names the vCPUs asked to leave
/// the guest, each answers once (<see cref="CpuSuspended"/>, or <see cref="CpuInactive"/> for one that was not
/// running guest code: not started, shut down, failed), and the state becomes Suspended only when the last
/// has answered. Thread-safe: the supervisor moves it, control clients read it.
/// </summary>
public sealed class VmLifecycle
{
    private readonly object _lock = new();
    private VmState _state = VmState.Starting;
    private readonly HashSet<int> _waitingFor = new();
    private readonly SortedSet<int> _suspendedCpus = new();

    /// <summary>Each transition as it happens (old, new, reason), on the thread that made it.</summary>
    public event Action<VmState, VmState, string>? Transitioned;

    public VmState State
    {
        get { lock (_lock) return _state; }
    }

    /// <summary>The vCPUs that acknowledged the current (or last completed) suspend.</summary>
    public IReadOnlyList<int> SuspendedCpus
    {
        get { lock (_lock) return _state is VmState.Suspending or VmState.Suspended ? _suspendedCpus.ToArray() : []; }
    }

    public static bool IsFinal(VmState s) => s is VmState.PoweredOff or VmState.Failed;

    public static bool Allowed(VmState from, VmState to) => (from, to) switch
    {
        (VmState.Starting, VmState.Running or VmState.Resetting or VmState.PoweredOff or VmState.Failed) => true,
        (VmState.Running, VmState.Suspending or VmState.Resetting or VmState.PoweredOff or VmState.Failed) => true,
        (VmState.Suspending, VmState.Suspended or VmState.Resetting or VmState.PoweredOff or VmState.Failed) => true,
        (VmState.Suspended, VmState.Running or VmState.Resetting or VmState.PoweredOff or VmState.Failed) => true,
        (VmState.Resetting, VmState.Starting or VmState.PoweredOff or VmState.Failed) => true,
        _ => false,
    };

    /// <summary>Moves to <paramref name="to"/> if the table allows it; otherwise says why not.</summary>
    public bool TryMove(VmState to, string reason, out string? refusal)
    {
        VmState from;
        lock (_lock)
        {
            from = _state;
            if (!Allowed(from, to))
            {
                refusal = $"the VM is {from.Wire()}; it cannot become {to.Wire()}";
                return false;
            }
            _state = to;
            if (to is not (VmState.Suspending or VmState.Suspended))
            {
                _waitingFor.Clear();
                _suspendedCpus.Clear();
            }
        }
        refusal = null;
        Transitioned?.Invoke(from, to, reason);
        return true;
    }

    /// <summary>
    /// Sets the state without the table: only for the runner, when a guest's reset request that reached the
    /// supervisor after its halt had already ended the VM turns that end into a reset after all.
    /// </summary>
    internal void Override(VmState to, string reason)
    {
        VmState from;
        lock (_lock)
        {
            from = _state;
            _state = to;
            _waitingFor.Clear();
            _suspendedCpus.Clear();
        }
        if (from != to) Transitioned?.Invoke(from, to, reason);
    }

    /// <summary>Moves or throws: for transitions the caller has already checked.</summary>
    public void Move(VmState to, string reason)
    {
        if (!TryMove(to, reason, out var refusal)) throw new InvalidOperationException(refusal);
    }

    /// <summary>
    /// Running → Suspending, waiting for <paramref name="cpus"/>. With no vCPU to wait for it completes at
    /// once (true: the VM is Suspended).
    /// </summary>
    public bool BeginSuspend(IEnumerable<int> cpus, string reason, out string? refusal)
    {
        if (!TryMove(VmState.Suspending, reason, out refusal)) return false;
        lock (_lock)
        {
            _waitingFor.UnionWith(cpus);
            _suspendedCpus.Clear();
        }
        return CompleteIfDone();
    }

    /// <summary>vCPU <paramref name="cpu"/> has left the guest. True when this completed the suspend.</summary>
    public bool CpuSuspended(int cpu)
    {
        lock (_lock)
        {
            if (_state != VmState.Suspending || !_waitingFor.Remove(cpu)) return false;
            _suspendedCpus.Add(cpu);
        }
        return CompleteIfDone();
    }

    /// <summary>vCPU <paramref name="cpu"/> was not running guest code, so there is nothing to wait for. True when this completed the suspend.</summary>
    public bool CpuInactive(int cpu)
    {
        lock (_lock)
        {
            if (_state != VmState.Suspending || !_waitingFor.Remove(cpu)) return false;
        }
        return CompleteIfDone();
    }

    /// <summary>The vCPUs a suspend in progress still waits for.</summary>
    public IReadOnlyList<int> PendingCpus
    {
        get { lock (_lock) return _waitingFor.Order().ToArray(); }
    }

    private bool CompleteIfDone()
    {
        lock (_lock)
        {
            if (_state != VmState.Suspending || _waitingFor.Count > 0) return false;
        }
        return TryMove(VmState.Suspended, "every active vCPU has left the guest", out _);
    }

    /// <summary>The final state an exit code means, or Resetting for a reset the runner will rebuild.</summary>
    public static VmState StateAfter(VmExitCode code) => code switch
    {
        VmExitCode.Reset => VmState.Resetting,
        VmExitCode.TripleFault or VmExitCode.Error => VmState.Failed,
        _ => VmState.PoweredOff,
    };
}
