using Actorvisor.Host.Vm;
using Actorvisor.Kernel.Cpu;

namespace Actorvisor.Host.Settings;

/// <summary>
/// One VM's settings as `actorvisor run` takes them, from the command line or a config file; null means
/// "not given". <see cref="OverriddenBy"/> lays the command line's over a file's.
/// </summary>
public sealed record VmSettings
{
    public string? Name { get; init; }
    public string? Kernel { get; init; }
    public string? Initrd { get; init; }
    public ulong? Memory { get; init; }
    public CpuTopology? Cpus { get; init; }
    public string? Cmdline { get; init; }
    public IReadOnlyList<string>? Modules { get; init; }
    public IReadOnlyList<DeviceSpec>? Devices { get; init; }
    /// <summary>"stdio" or "file:PATH".</summary>
    public string? Serial { get; init; }
    public bool? NoReboot { get; init; }
    /// <summary>Device supervision policies (config file only: <c>supervision: {uart-0: restart, "*": escalate}</c>).</summary>
    public DeviceSupervision? Supervision { get; init; }

    /// <summary><c>--deterministic</c>; <see cref="Record"/> or <see cref="Replay"/> imply it.</summary>
    public bool? Deterministic { get; init; }
    public string? Record { get; init; }
    public string? Replay { get; init; }
    /// <summary><c>--faults FILE</c> (one or more scenario files, their rules in order) and <c>--fault-seed</c>.</summary>
    public string[]? Faults { get; init; }
    public ulong? FaultSeed { get; init; }
    /// <summary><c>-s</c>/<c>--slot</c> specs, <c>--disk</c>, <c>--rng</c>, <c>--net</c>: each a key of its own.</summary>
    public IReadOnlyList<string>? Slots { get; init; }
    public IReadOnlyList<string>? Disks { get; init; }
    public bool? Rng { get; init; }
    public IReadOnlyList<string>? Nets { get; init; }

    /// <summary>These settings with every value <paramref name="flags"/> gives put in place of this one's.</summary>
    public VmSettings OverriddenBy(VmSettings flags) => new()
    {
        Name = flags.Name ?? Name,
        Kernel = flags.Kernel ?? Kernel,
        Initrd = flags.Initrd ?? Initrd,
        Memory = flags.Memory ?? Memory,
        Cpus = flags.Cpus ?? Cpus,
        Cmdline = flags.Cmdline ?? Cmdline,
        Modules = flags.Modules ?? Modules,
        Devices = flags.Devices ?? Devices,
        Serial = flags.Serial ?? Serial,
        NoReboot = flags.NoReboot ?? NoReboot,
        Supervision = flags.Supervision ?? Supervision,
        Deterministic = flags.Deterministic ?? Deterministic,
        Record = flags.Record ?? Record,
        Replay = flags.Replay ?? Replay,
        Faults = flags.Faults ?? Faults,
        FaultSeed = flags.FaultSeed ?? FaultSeed,
        Slots = flags.Slots ?? Slots,
        Disks = flags.Disks ?? Disks,
        Rng = flags.Rng ?? Rng,
        Nets = flags.Nets ?? Nets,
    };

    public string SerialOrDefault => Serial ?? "stdio";
}

/// <summary>
/// Settings of the whole `actorvisor run` process rather than of one VM: where the control sockets go, the
/// `--stats` summary, and telemetry (one session for every VM of the process). In a config file they are
/// top-level keys, also beside <c>vms:</c>.
/// </summary>
public sealed record ProcessSettings
{
    public bool? Stats { get; init; }
    public string? RunDir { get; init; }
    public string? Trace { get; init; }
    public double? TraceSample { get; init; }
    public string? Otlp { get; init; }
    public string? OtlpProtocol { get; init; }
    public string? Metrics { get; init; }
    public string? TraceFile { get; init; }

    public ProcessSettings OverriddenBy(ProcessSettings flags) => new()
    {
        Stats = flags.Stats ?? Stats,
        RunDir = flags.RunDir ?? RunDir,
        Trace = flags.Trace ?? Trace,
        TraceSample = flags.TraceSample ?? TraceSample,
        Otlp = flags.Otlp ?? Otlp,
        OtlpProtocol = flags.OtlpProtocol ?? OtlpProtocol,
        Metrics = flags.Metrics ?? Metrics,
        TraceFile = flags.TraceFile ?? TraceFile,
    };

    /// <summary>The telemetry these settings ask for, checked as the flags are; null and an error when a value is bad.</summary>
    public Telemetry.TelemetryOptions? Telemetry(out string? error)
    {
        error = null;
        if (Trace is { } classes)
        {
            try
            {
                Actorvisor.Kernel.Telemetry.TraceSwitches.Parse(classes);
            }
            catch (FormatException e)
            {
                error = $"trace: {e.Message}";
                return null;
            }
        }
        if (TraceSample is { } ratio && !(ratio is >= 0 and <= 1))
        {
            error = $"trace-sample {ratio}: expected a ratio between 0 and 1";
            return null;
        }
        Uri? otlp = null;
        if (Otlp is { } o && !Host.Telemetry.TelemetryOptions.TryParseOtlp(o, out otlp, out error)) return null;
        System.Net.IPEndPoint? metrics = null;
        if (Metrics is { } m && !Host.Telemetry.TelemetryOptions.TryParseMetricsEndpoint(m, out metrics, out error)) return null;
        var wire = OtlpProtocol switch
        {
            null => Host.Telemetry.TelemetryOptions.OtlpWire.Auto,
            "grpc" => Host.Telemetry.TelemetryOptions.OtlpWire.Grpc,
            "http/protobuf" => Host.Telemetry.TelemetryOptions.OtlpWire.HttpProtobuf,
            var p => (Host.Telemetry.TelemetryOptions.OtlpWire?)null,
        };
        if (wire is null)
        {
            error = $"otlp-protocol '{OtlpProtocol}': expected 'grpc' or 'http/protobuf'";
            return null;
        }
        return new Host.Telemetry.TelemetryOptions
        {
            Trace = Trace, SampleRatio = TraceSample ?? 1.0, Otlp = otlp, OtlpProtocol = wire.Value, Metrics = metrics, TraceFile = TraceFile,
        };
    }
}
