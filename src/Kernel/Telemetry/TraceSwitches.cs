using System.Collections.Concurrent;

namespace Actorvisor.Kernel.Telemetry;

/// <summary>
/// Which event classes are traced, switchable at run time, and the sampling ratio. A class is a dotted name:
/// <c>irq.&lt;device&gt;</c> (an interrupt's whole path, by the device that raised it: <c>irq.uart-0</c>),
/// <c>io.&lt;device&gt;</c> (port and MMIO accesses to a device: <c>io.uart-0</c>, <c>io.ioapic</c>),
/// <c>vm.lifecycle</c> and <c>fault.&lt;rule&gt;</c>. A pattern list is comma-separated globs (<c>*</c>, <c>?</c>);
/// a pattern starting with <c>-</c> disables what it matches; the last matching pattern wins.
/// <para>
/// Off must cost nearly nothing: hot paths read <see cref="Active"/> (one static field) and go on when it is
/// zero. The per-class answers are cached per <see cref="Version"/>, which every change bumps.
/// </para>
/// </summary>
public static class TraceSwitches
{
    [Flags]
    public enum Kinds
    {
        None = 0,
        /// <summary>Some io.* class may be on.</summary>
        Io = 1,
        /// <summary>Some irq.* class may be on.</summary>
        Irq = 2,
        Lifecycle = 4,
        Fault = 8,
        /// <summary>Metrics are collected (a meter listener is there): per-device counts and histograms.</summary>
        Metrics = 16,
    }

    private static readonly object Gate = new();
    /// <summary>The patterns and the answers computed from them, replaced together so no answer outlives its patterns.</summary>
    private sealed record Rules((string Glob, bool On)[] Patterns)
    {
        public readonly ConcurrentDictionary<string, bool> Cache = new();
    }
    private static volatile Rules _rules = new([]);
    private static double _ratio = 1.0;
    private static Kinds _tracing;
    private static bool _metrics;
    private static int _counters;

    /// <summary>What is on, as one field the hot paths read. Zero: nothing at all.</summary>
    public static volatile Kinds Active;

    /// <summary>
    /// Whether a bus access has anything to do (io spans or per-device metrics): the vCPU's one check per access.
    /// </summary>
    public static bool BusActive => (Active & (Kinds.Io | Kinds.Metrics)) != 0;

    /// <summary>Bumped on every change; callers cache per-class answers against it.</summary>
    public static int Version { get; private set; }

    /// <summary>The pattern list as last set ("" when nothing is traced).</summary>
    public static string Patterns { get; private set; } = "";

    public static double SampleRatio
    {
        get => Volatile.Read(ref _ratio);
        set
        {
            if (!(value is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(value), value, "a ratio between 0 and 1");
            Volatile.Write(ref _ratio, value);
        }
    }

    /// <summary>Sets the traced classes (see the type's summary for the syntax); "" turns tracing off.</summary>
    public static void SetPatterns(string patterns)
    {
        var parsed = Parse(patterns);
        lock (Gate)
        {
            _rules = new Rules(parsed);
            Patterns = string.Join(",", parsed.Select(p => (p.On ? "" : "-") + p.Glob));
            _tracing = Kinds.None;
            foreach (var (prefix, kind) in new[] { ("io.", Kinds.Io), ("irq.", Kinds.Irq), ("vm.lifecycle", Kinds.Lifecycle), ("fault.", Kinds.Fault) })
                if (parsed.Any(p => p.On && MayMatchPrefix(p.Glob, prefix))) _tracing |= kind;
            Publish();
        }
    }

    /// <summary>Metrics on or off (the host turns them on when it has a meter provider).</summary>
    public static void SetMetrics(bool on)
    {
        lock (Gate)
        {
            _metrics = on;
            Publish();
        }
    }

    /// <summary>Metrics are exported (a meter provider is there); <see cref="Kinds.Metrics"/> may also be on for a live view.</summary>
    public static bool MetricsOn
    {
        get
        {
            lock (Gate) return _metrics;
        }
    }

    /// <summary>
    /// Per-device counting on without an exporter, for a live view (<c>actorvisor top</c>): the counts the
    /// metrics read (accesses per device, raised lines) are kept while at least one lease is held.
    /// </summary>
    public static IDisposable CountingLease()
    {
        lock (Gate)
        {
            _counters++;
            Publish();
        }
        return new Lease();
    }

    private sealed class Lease : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            lock (Gate)
            {
                _counters--;
                Publish();
            }
        }
    }

    private static void Publish()
    {
        Version++;
        Active = _tracing | (_metrics || _counters > 0 ? Kinds.Metrics : Kinds.None);
    }

    /// <summary>Whether <paramref name="eventClass"/> is traced now (sampling aside).</summary>
    public static bool IsEnabled(string eventClass)
    {
        if (Active == Kinds.None) return false;
        var rules = _rules;
        if (rules.Cache.TryGetValue(eventClass, out var on)) return on;
        on = false;
        foreach (var (glob, positive) in rules.Patterns)
            if (GlobMatch(glob, eventClass)) on = positive;
        rules.Cache[eventClass] = on;
        return on;
    }

    /// <summary>The sampling decision for a new trace: true with probability <see cref="SampleRatio"/>.</summary>
    public static bool Sample()
    {
        var r = SampleRatio;
        return r >= 1 || (r > 0 && Random.Shared.NextDouble() < r);
    }

    /// <summary>Both questions at once: the class is on and this one is sampled.</summary>
    public static bool ShouldTrace(string eventClass) => IsEnabled(eventClass) && Sample();

    public static (string Glob, bool On)[] Parse(string patterns)
    {
        var list = new List<(string, bool)>();
        foreach (var raw in patterns.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var on = !raw.StartsWith('-');
            var glob = on ? raw : raw[1..];
            if (glob.Length == 0) throw new FormatException($"trace pattern '{raw}' names nothing");
            foreach (var c in glob)
                if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '*' or '?'))
                    throw new FormatException($"trace pattern '{raw}': '{c}' is not allowed (letters, digits, '.', '-', '_', '*', '?')");
            list.Add((glob, on));
        }
        return list.ToArray();
    }

    /// <summary>Glob match: <c>*</c> any run of characters, <c>?</c> any one; case-sensitive (class names are lower case).</summary>
    public static bool GlobMatch(string glob, string text)
    {
        int g = 0, t = 0, starG = -1, starT = 0;
        while (t < text.Length)
        {
            if (g < glob.Length && (glob[g] == '?' || glob[g] == text[t])) { g++; t++; }
            else if (g < glob.Length && glob[g] == '*') { starG = g++; starT = t; }
            else if (starG >= 0) { g = starG + 1; t = ++starT; }
            else return false;
        }
        while (g < glob.Length && glob[g] == '*') g++;
        return g == glob.Length;
    }

    /// <summary>Whether some name starting with <paramref name="prefix"/> could match <paramref name="glob"/>.</summary>
    private static bool MayMatchPrefix(string glob, string prefix)
    {
        for (var i = 0; i < prefix.Length; i++)
        {
            if (i >= glob.Length) return false;
            if (glob[i] == '*') return true;
            if (glob[i] != '?' && glob[i] != prefix[i]) return false;
        }
        return true;
    }
}

/// <summary>
/// The run-time switch as the control socket sees it (<c>actorvisor ctl NAME trace ...</c>): set the classes and
/// the sampling ratio, read both back. Process-wide, like the ActivitySource it gates.
/// </summary>
public interface ITraceControl
{
    /// <summary>Sets the traced classes; throws <see cref="FormatException"/> on a bad pattern.</summary>
    void SetClasses(string patterns);
    void SetSampleRatio(double ratio);
    TraceStatus Status();
}

public sealed record TraceStatus(string Patterns, double SampleRatio, bool Metrics, int Version);

public sealed class TraceControl : ITraceControl
{
    public static readonly TraceControl Instance = new();

    public void SetClasses(string patterns) => TraceSwitches.SetPatterns(patterns);
    public void SetSampleRatio(double ratio) => TraceSwitches.SampleRatio = ratio;
    public TraceStatus Status() => new(TraceSwitches.Patterns, TraceSwitches.SampleRatio, TraceSwitches.MetricsOn, TraceSwitches.Version);
}
