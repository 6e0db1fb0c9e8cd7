using Actorvisor.Kernel.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Actorvisor.Host.Telemetry;

/// <summary>
/// The exporters of one <c>actorvisor run</c>: a tracer provider (OTLP, the JSON-lines file) and a meter
/// provider (OTLP, the Prometheus scrape endpoint) for source and meter "Actorvisor", and the trace switches set
/// from the options. Disposing ends open interrupt traces, flushes and stops the exporters, and turns every
/// switch off again (tests run several sessions in one process). One session at a time: the switches are
/// process-wide.
/// </summary>
public sealed class TelemetrySession : IDisposable
{
    private readonly TracerProvider? _traces;
    private readonly MeterProvider? _metrics;

    public TelemetryOptions Options { get; }

    private TelemetrySession(TelemetryOptions options, TracerProvider? traces, MeterProvider? metrics)
    {
        Options = options;
        _traces = traces;
        _metrics = metrics;
    }

    /// <param name="configureTraces">Adds more span processors (tests: the in-memory exporter); forces a tracer provider.</param>
    /// <param name="configureMetrics">Adds more metric readers; forces a meter provider.</param>
    public static TelemetrySession Start(TelemetryOptions options, Action<TracerProviderBuilder>? configureTraces = null,
        Action<MeterProviderBuilder>? configureMetrics = null)
    {
        var resource = ResourceBuilder.CreateDefault().AddService("actorvisor");
        TracerProvider? traces = null;
        MeterProvider? metrics = null;
        try
        {
            if (options.ExportsTraces || configureTraces is not null)
            {
                // Sampling is decided where a trace starts (TraceSwitches), so the SDK takes what it is given.
                var b = Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource(ActorvisorTelemetry.Name)
                    .SetSampler(new ParentBasedSampler(new AlwaysOnSampler()));
                if (options.OtlpBase is { } otlp)
                    b.AddOtlpExporter(o => Configure(o, options, otlp, "v1/traces"));
                if (options.TraceFile is { } path)
                    b.AddProcessor(new BatchActivityExportProcessor(new JsonLinesTraceExporter(path), maxQueueSize: 1 << 16,
                        scheduledDelayMilliseconds: 1000, maxExportBatchSize: 4096));
                configureTraces?.Invoke(b);
                traces = b.Build();
            }
            if (options.ExportsMetrics || configureMetrics is not null)
            {
                var b = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(ActorvisorTelemetry.Name);
                if (options.OtlpBase is { } otlp)
                    b.AddOtlpExporter((o, reader) =>
                    {
                        Configure(o, options, otlp, "v1/metrics");
                        reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)options.OtlpMetricsInterval.TotalMilliseconds;
                    });
                if (options.Metrics is { } endpoint)
                    b.AddPrometheusHttpListener(o =>
                    {
                        o.Host = endpoint.Address.ToString();
                        o.Port = endpoint.Port;
                    });
                configureMetrics?.Invoke(b);
                metrics = b.Build();
            }
        }
        catch
        {
            traces?.Dispose();
            metrics?.Dispose();
            throw;
        }
        TraceSwitches.SampleRatio = options.SampleRatio;
        TraceSwitches.SetPatterns(options.EffectiveClasses);
        TraceSwitches.SetMetrics(metrics is not null);
        return new TelemetrySession(options, traces, metrics);
    }

    private static void Configure(OtlpExporterOptions o, TelemetryOptions options, Uri otlp, string signalPath)
    {
        if (options.ResolvedProtocol == TelemetryOptions.OtlpWire.Grpc)
        {
            o.Protocol = OtlpExportProtocol.Grpc;
            o.Endpoint = otlp;
        }
        else
        {
            // Given in code, the HTTP endpoint is taken as the full signal URL: append /v1/traces or /v1/metrics.
            o.Protocol = OtlpExportProtocol.HttpProtobuf;
            o.Endpoint = new Uri(otlp.AbsoluteUri.TrimEnd('/') + "/" + signalPath);
        }
    }

    /// <summary>Pushes what is buffered out now (tests; the end of a run).</summary>
    public void Flush()
    {
        _traces?.ForceFlush(5000);
        _metrics?.ForceFlush(5000);
    }

    public void Dispose()
    {
        TraceSwitches.SetPatterns("");
        InterruptTrace.EndAll();
        _traces?.ForceFlush(5000);
        _traces?.Dispose();
        _metrics?.Dispose();
        TraceSwitches.SetMetrics(false);
        TraceSwitches.SampleRatio = 1.0;
    }
}
