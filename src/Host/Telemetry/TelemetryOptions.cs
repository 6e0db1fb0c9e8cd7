using System.Net;

namespace Actorvisor.Host.Telemetry;

/// <summary>What <c>actorvisor run</c>'s telemetry flags ask for (see README, "Telemetry").</summary>
public sealed record TelemetryOptions
{
    /// <summary>The classes traced when an exporter is given but <c>--trace</c> is not.</summary>
    public const string DefaultClasses = "irq.*,vm.lifecycle,fault.*";

    /// <summary><c>--trace</c>: comma-separated class globs; null: <see cref="DefaultClasses"/> if traces are exported.</summary>
    public string? Trace { get; init; }
    public double SampleRatio { get; init; } = 1.0;
    /// <summary><c>--otlp</c>: the collector's base URL (traces and metrics).</summary>
    public Uri? Otlp { get; init; }
    public OtlpWire OtlpProtocol { get; init; } = OtlpWire.Auto;
    /// <summary><c>--metrics</c>: the Prometheus scrape endpoint (127.0.0.1 only).</summary>
    public IPEndPoint? Metrics { get; init; }
    /// <summary><c>--trace-file</c>: JSON lines, one span per line (docs/TRACE-FILE.md).</summary>
    public string? TraceFile { get; init; }
    /// <summary>How often metrics are pushed over OTLP.</summary>
    public TimeSpan OtlpMetricsInterval { get; init; } = TimeSpan.FromSeconds(5);

    public bool ExportsTraces => Otlp is not null || TraceFile is not null;
    public bool ExportsMetrics => Otlp is not null || Metrics is not null;
    public bool Any => ExportsTraces || ExportsMetrics || Trace is not null;

    /// <summary>The class list in force: what --trace says, else the default when traces go somewhere, else nothing.</summary>
    public string EffectiveClasses => Trace ?? (ExportsTraces ? DefaultClasses : "");

    /// <summary>gRPC or HTTP/protobuf; <see cref="Auto"/> picks by the convention (port 4317 or scheme grpc → gRPC).</summary>
    public enum OtlpWire { Auto, Grpc, HttpProtobuf }

    public OtlpWire ResolvedProtocol => OtlpProtocol != OtlpWire.Auto ? OtlpProtocol
        : Otlp is { } u && (u.Port == 4317 || u.Scheme == "grpc") ? OtlpWire.Grpc : OtlpWire.HttpProtobuf;

    /// <summary>The URL the exporter dials (a grpc:// scheme becomes http://).</summary>
    public Uri? OtlpBase => Otlp is null ? null : Otlp.Scheme == "grpc" ? new UriBuilder(Otlp) { Scheme = "http" }.Uri : Otlp;

    public static bool TryParseMetricsEndpoint(string text, out IPEndPoint? endpoint, out string? error)
    {
        endpoint = null;
        error = null;
        var colon = text.LastIndexOf(':');
        var host = colon < 0 ? "127.0.0.1" : text[..colon];
        var portText = colon < 0 ? text : text[(colon + 1)..];
        if (host is "localhost") host = "127.0.0.1";
        if (!IPAddress.TryParse(host, out var address) || !address.Equals(IPAddress.Loopback))
        {
            error = $"--metrics '{text}': the scrape endpoint listens on 127.0.0.1 only (give 127.0.0.1:PORT or PORT)";
            return false;
        }
        if (!ushort.TryParse(portText, out var port) || port == 0)
        {
            error = $"--metrics '{text}': '{portText}' is not a port";
            return false;
        }
        endpoint = new IPEndPoint(address, port);
        return true;
    }

    public static bool TryParseOtlp(string text, out Uri? uri, out string? error)
    {
        error = null;
        if (!Uri.TryCreate(text, UriKind.Absolute, out uri) || uri.Scheme is not ("http" or "https" or "grpc"))
        {
            error = $"--otlp '{text}': expected a URL such as http://127.0.0.1:4318 (http, https or grpc)";
            uri = null;
            return false;
        }
        return true;
    }
}
