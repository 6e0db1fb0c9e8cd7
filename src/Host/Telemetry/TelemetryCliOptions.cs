using System.CommandLine;
using Actorvisor.Kernel.Telemetry;

namespace Actorvisor.Host.Telemetry;

/// <summary>The telemetry flags of <c>actorvisor run</c> (README, "Telemetry"), parsed into <see cref="TelemetryOptions"/>.</summary>
public sealed class TelemetryCliOptions
{
    private readonly Option<string> _trace = new("--trace")
    {
        Description = "Event classes to trace, comma-separated globs: irq.<device> (an interrupt's path), io.<device> (port/MMIO accesses), vm.lifecycle, fault.<rule>; '-' before a glob excludes. E.g. 'irq.*', 'io.uart*'",
    };
    private readonly Option<double> _sample = new("--trace-sample")
    {
        Description = "Fraction of traces kept, 0..1 (each interrupt or access is kept with this probability)",
        DefaultValueFactory = _ => 1.0,
    };
    private readonly Option<string> _otlp = new("--otlp")
    {
        Description = "Export traces and metrics over OTLP to this collector, e.g. http://127.0.0.1:4318 (HTTP/protobuf) or http://127.0.0.1:4317 (gRPC)",
    };
    private readonly Option<string> _otlpProtocol = new("--otlp-protocol")
    {
        Description = "OTLP wire: 'grpc' or 'http/protobuf'; default by convention: port 4317 or a grpc:// URL is gRPC, anything else HTTP/protobuf",
    };
    private readonly Option<string> _metrics = new("--metrics")
    {
        Description = "Serve Prometheus metrics at http://127.0.0.1:PORT/metrics (give 127.0.0.1:PORT or PORT; 127.0.0.1 only)",
    };
    private readonly Option<string> _traceFile = new("--trace-file")
    {
        Description = "Write spans as JSON lines to this file (docs/TRACE-FILE.md); 'actorvisor trace summarize FILE' reads it",
    };

    public TelemetryCliOptions()
    {
        _trace.Validators.Add(r =>
        {
            try
            {
                TraceSwitches.Parse(r.GetValueOrDefault<string>() ?? "");
            }
            catch (FormatException e)
            {
                r.AddError($"--trace: {e.Message}");
            }
        });
        _sample.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<double>();
            if (!(v is >= 0 and <= 1)) r.AddError($"--trace-sample {v}: expected a ratio between 0 and 1");
        });
        _otlp.Validators.Add(r =>
        {
            if (!TelemetryOptions.TryParseOtlp(r.GetValueOrDefault<string>() ?? "", out _, out var error)) r.AddError(error!);
        });
        _otlpProtocol.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string>() is not ("grpc" or "http/protobuf"))
                r.AddError($"--otlp-protocol '{r.GetValueOrDefault<string>()}': expected 'grpc' or 'http/protobuf'");
        });
        _metrics.Validators.Add(r =>
        {
            if (!TelemetryOptions.TryParseMetricsEndpoint(r.GetValueOrDefault<string>() ?? "", out _, out var error)) r.AddError(error!);
        });
    }

    public void AddTo(Command command)
    {
        command.Options.Add(_trace);
        command.Options.Add(_sample);
        command.Options.Add(_otlp);
        command.Options.Add(_otlpProtocol);
        command.Options.Add(_metrics);
        command.Options.Add(_traceFile);
    }

    /// <summary>The telemetry flags given explicitly (null: not given), to lay over a config file's keys.</summary>
    public Settings.ProcessSettings Given(ParseResult parse, Settings.ProcessSettings others)
    {
        T? Given<T>(Option<T> o) => parse.GetResult(o) is { Implicit: false } ? parse.GetValue(o) : default;
        return others with
        {
            Trace = Given(_trace), TraceSample = parse.GetResult(_sample) is { Implicit: false } ? parse.GetValue(_sample) : null,
            Otlp = Given(_otlp), OtlpProtocol = Given(_otlpProtocol), Metrics = Given(_metrics), TraceFile = Given(_traceFile),
        };
    }

    /// <summary>The options given (the validators have run, so the parses succeed).</summary>
    public TelemetryOptions Read(ParseResult parse)
    {
        Uri? otlp = null;
        if (parse.GetValue(_otlp) is { } o) TelemetryOptions.TryParseOtlp(o, out otlp, out _);
        System.Net.IPEndPoint? metrics = null;
        if (parse.GetValue(_metrics) is { } m) TelemetryOptions.TryParseMetricsEndpoint(m, out metrics, out _);
        return new TelemetryOptions
        {
            Trace = parse.GetValue(_trace),
            SampleRatio = parse.GetValue(_sample),
            Otlp = otlp,
            OtlpProtocol = parse.GetValue(_otlpProtocol) switch
            {
                "grpc" => TelemetryOptions.OtlpWire.Grpc,
                "http/protobuf" => TelemetryOptions.OtlpWire.HttpProtobuf,
                _ => TelemetryOptions.OtlpWire.Auto,
            },
            Metrics = metrics,
            TraceFile = parse.GetValue(_traceFile),
        };
    }
}
