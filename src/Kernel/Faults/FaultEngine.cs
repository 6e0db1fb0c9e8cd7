namespace Actorvisor.Kernel.Faults;

/// <summary>What one rule did so far (for `faults report` and the exit summary).</summary>
public sealed record FaultRuleReport(string Rule, long Matched, long Fired, TimeSpan? FirstFired, TimeSpan? LastFired);

/// <summary>
/// The fault-injection engine: rules and a seed decide every fault. Between the bus and interrupt fabric
/// and the device actors, each hook asks <see cref="Decide"/> about an event and applies the verdict. The
/// first rule (in order) that matches the event in the current state and whose trigger fires decides; rules
/// that match but do not fire still count the event. With the same rules, seed and sequence of events (the
/// deterministic schedule guarantees the sequence), the decisions are the same. Safe from any thread: the
/// hooks run on vCPU, device and timer threads in the real-time schedule.
/// </summary>
public sealed class FaultEngine
{
    public const string InitialState = "start";

    private readonly object _lock = new();
    private readonly List<Entry> _rules = new();
    private readonly SplitMix64 _random;
    private readonly TimeProvider _clock;
    private readonly long _origin;
    private volatile bool _active;

    private sealed class Entry(FaultRule rule)
    {
        public readonly FaultRule Rule = rule;
        public long Matched, Fired;
        public TimeSpan? First, Last;
    }

    /// <param name="clock">The VM's clock (the instruction clock in the deterministic schedule): windows and the report use it.</param>
    public FaultEngine(ulong seed, TimeProvider clock, IEnumerable<FaultRule>? rules = null)
    {
        Seed = seed;
        _random = new SplitMix64(seed);
        _clock = clock;
        _origin = clock.GetTimestamp();
        foreach (var r in rules ?? []) Add(r);
    }

    public ulong Seed { get; }

    /// <summary>Where delayed deliveries wait (the VM's timer service); without it a delay rule delivers at once.</summary>
    public Actorvisor.Kernel.Time.ITimerService? Timers { get; set; }

    /// <summary>Runs <paramref name="deliver"/> <paramref name="delay"/> from now on <see cref="Timers"/>.</summary>
    public void Later(TimeSpan delay, Action deliver)
    {
        if (Timers is not { } timers)
        {
            deliver();
            return;
        }
        var clock = timers.Clock;
        var ticks = (long)((Int128)Math.Max(0, delay.Ticks) * clock.TimestampFrequency / TimeSpan.TicksPerSecond);
        timers.Schedule(clock.GetTimestamp() + ticks, deliver);
    }
    public string State { get; private set; } = InitialState;
    public bool Paused { get; private set; }

    /// <summary>Cheap check for the hooks: false when there is no rule (or the engine is paused), so no event is even described.</summary>
    public bool Active => _active;

    /// <summary>Fires after a rule was added or removed, or the engine paused or resumed (on the caller's thread): storms start and end here.</summary>
    public event Action? RulesChanged;

    /// <summary>The GSIs that storm rules hold asserted now: none while the engine is paused.</summary>
    public IReadOnlySet<int> StormGsis
    {
        get
        {
            lock (_lock)
                return Paused ? new HashSet<int>() : _rules.Where(e => e.Rule.Action.Verdict == FaultVerdict.Storm)
                    .Select(e => (int)e.Rule.Target.From!.Value).ToHashSet();
        }
    }

    /// <summary>Fires when a rule fires (on the thread of the event): the telemetry's span event and counter hang here.</summary>
    public event Action<FaultPoint, FaultDecision>? Fired;

    /// <summary>Adds a rule at the end; a name already in use is refused.</summary>
    public void Add(FaultRule rule)
    {
        lock (_lock)
        {
            if (_rules.Any(e => e.Rule.Name == rule.Name)) throw new ArgumentException($"a rule named '{rule.Name}' exists already");
            _rules.Add(new Entry(rule));
            Update();
        }
        NotifyChanged();
    }

    public bool Remove(string name)
    {
        int n;
        lock (_lock)
        {
            n = _rules.RemoveAll(e => e.Rule.Name == name);
            Update();
        }
        NotifyChanged();
        return n > 0;
    }

    public void Clear()
    {
        lock (_lock)
        {
            _rules.Clear();
            Update();
        }
        NotifyChanged();
    }

    public void Pause(bool paused)
    {
        lock (_lock)
        {
            Paused = paused;
            Update();
        }
        NotifyChanged();
    }

    public IReadOnlyList<FaultRule> Rules
    {
        get { lock (_lock) return _rules.Select(e => e.Rule).ToArray(); }
    }

    public IReadOnlyList<FaultRuleReport> Report()
    {
        lock (_lock) return _rules.Select(e => new FaultRuleReport(e.Rule.Name, e.Matched, e.Fired, e.First, e.Last)).ToArray();
    }

    private void Update()
    {
        _active = !Paused && _rules.Count > 0;
        _changed = true;
    }

    private bool _changed;

    /// <summary>Tells <see cref="RulesChanged"/> outside the lock, so a handler may read the engine.</summary>
    private void NotifyChanged()
    {
        bool changed;
        lock (_lock) (changed, _changed) = (_changed, false);
        if (changed) RulesChanged?.Invoke();
    }

    /// <param name="width">The access's width in bytes, for a random bit flip.</param>
    public FaultDecision Decide(in FaultPoint point, int width = 8)
    {
        if (!_active) return FaultDecision.Pass;
        FaultDecision decision;
        lock (_lock)
        {
            decision = DecideLocked(point, width);
        }
        if (decision.Verdict != FaultVerdict.Pass) Fired?.Invoke(point, decision);
        return decision;
    }

    private FaultDecision DecideLocked(in FaultPoint point, int width)
    {
        var now = TimeSpan.FromTicks((long)((Int128)(_clock.GetTimestamp() - _origin) * TimeSpan.TicksPerSecond / _clock.TimestampFrequency));
        foreach (var e in _rules)
        {
            var rule = e.Rule;
            if (rule.Action.Verdict == FaultVerdict.Storm) continue; // a source of events, not a verdict on them
            if (rule.InState is { } s && s != State) continue;
            if (!rule.Target.Matches(point)) continue;
            var t = rule.Trigger;
            if (t.WindowFrom is { } wf && now < wf) continue;
            if (t.WindowTo is { } wt && now > wt) continue;
            var n = ++e.Matched;
            if (n <= t.After || (n - t.After - 1) % t.Every != 0) continue;
            if (t.Limit is { } limit && e.Fired >= limit) continue;
            // Drawn only when the rule could fire, so rules without a probability take no draws.
            if (t.Probability < 1.0 && _random.NextDouble() >= t.Probability) continue;
            e.Fired++;
            e.First ??= now;
            e.Last = now;
            if (rule.ToState is { } next) State = next;
            return Make(rule, width);
        }
        return FaultDecision.Pass;
    }

    private FaultDecision Make(FaultRule rule, int width)
    {
        var a = rule.Action;
        return a.Verdict switch
        {
            FaultVerdict.Replace => new FaultDecision(FaultVerdict.Replace, rule.Name, default, a.Value),
            FaultVerdict.Corrupt => new FaultDecision(FaultVerdict.Corrupt, rule.Name, default,
                a.RandomBit ? 1UL << _random.NextInt(Math.Clamp(width, 1, 8) * 8) : a.XorMask),
            FaultVerdict.Short or FaultVerdict.Crash => new FaultDecision(a.Verdict, rule.Name, default, a.Bytes),
            _ => new FaultDecision(a.Verdict, rule.Name, a.Delay),
        };
    }
}
