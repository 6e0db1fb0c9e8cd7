using System.Diagnostics;
using System.Text.Json;
using OpenTelemetry;

namespace Actorvisor.Host.Telemetry;

/// <summary>
/// Writes each finished span as one JSON object on its own line (schema: docs/TRACE-FILE.md). The SDK calls
/// <see cref="Export"/> from one thread at a time (its batch processor), so the writer needs no lock.
/// </summary>
public sealed class JsonLinesTraceExporter : BaseExporter<Activity>
{
    public const int SchemaVersion = 1;

    private readonly Stream _stream;
    private readonly Utf8JsonWriter _json;

    public JsonLinesTraceExporter(string path)
    {
        _stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
        _json = new Utf8JsonWriter(_stream, new JsonWriterOptions { SkipValidation = true });
    }

    public override ExportResult Export(in Batch<Activity> batch)
    {
        foreach (var a in batch)
        {
            Write(a);
            _json.Flush();
            _json.Reset();
            _stream.WriteByte((byte)'\n');
        }
        _stream.Flush();
        return ExportResult.Success;
    }

    private void Write(Activity a)
    {
        _json.WriteStartObject();
        _json.WriteNumber("v", SchemaVersion);
        _json.WriteString("name", a.DisplayName);
        _json.WriteString("trace_id", a.TraceId.ToHexString());
        _json.WriteString("span_id", a.SpanId.ToHexString());
        if (a.ParentSpanId != default) _json.WriteString("parent_id", a.ParentSpanId.ToHexString());
        _json.WriteString("kind", a.Kind.ToString().ToLowerInvariant());
        _json.WriteNumber("start_ns", UnixNanoseconds(a.StartTimeUtc));
        _json.WriteNumber("duration_ns", a.Duration.Ticks * 100);
        if (a.Status != ActivityStatusCode.Unset) _json.WriteString("status", a.Status.ToString().ToLowerInvariant());
        _json.WriteStartObject("attributes");
        foreach (var tag in a.TagObjects) WriteValue(tag.Key, tag.Value);
        _json.WriteEndObject();
        if (a.Events.Any())
        {
            _json.WriteStartArray("events");
            foreach (var e in a.Events)
            {
                _json.WriteStartObject();
                _json.WriteString("name", e.Name);
                _json.WriteNumber("time_ns", UnixNanoseconds(e.Timestamp.UtcDateTime));
                _json.WriteStartObject("attributes");
                foreach (var tag in e.Tags) WriteValue(tag.Key, tag.Value);
                _json.WriteEndObject();
                _json.WriteEndObject();
            }
            _json.WriteEndArray();
        }
        _json.WriteEndObject();
    }

    private void WriteValue(string key, object? value)
    {
        switch (value)
        {
            case null: _json.WriteNull(key); break;
            case bool b: _json.WriteBoolean(key, b); break;
            case int i: _json.WriteNumber(key, i); break;
            case long l: _json.WriteNumber(key, l); break;
            case double d: _json.WriteNumber(key, d); break;
            default: _json.WriteString(key, value.ToString()); break;
        }
    }

    public static long UnixNanoseconds(DateTime utc) => (utc.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    protected override bool OnShutdown(int timeoutMilliseconds)
    {
        _json.Dispose();
        _stream.Dispose();
        return true;
    }
}
