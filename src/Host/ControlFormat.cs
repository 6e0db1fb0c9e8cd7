using System.Text.Json.Nodes;

namespace Actorvisor.Host;

/// <summary>The human-readable form of control responses: one "name value" line per field, objects of scalars on one line.</summary>
public static class ControlFormat
{
    public static void Write(string verb, JsonObject result, TextWriter w)
    {
        switch (verb)
        {
            case "get-active-cpus":
                w.WriteLine($"active cpus: {Cpus(result["cpus"])}");
                return;
            case "get-suspended-cpus":
                w.WriteLine($"suspended cpus: {Cpus(result["cpus"])}");
                return;
            case "suspend":
                w.WriteLine($"{result["state"]}: cpus {Cpus(result["suspended_cpus"])}");
                return;
            case "rtc-time":
                w.WriteLine($"{result["utc"]} (unix {result["unix"]})");
                return;
            case "getcap" when result["caps"] is JsonObject caps:
                // As bhyvectl --getcap: one line per capability.
                var width = caps.Select(kv => kv.Key.Length).DefaultIfEmpty(0).Max();
                foreach (var (cap, value) in caps)
                    w.WriteLine($"{cap.PadRight(width)}  {value?["value"]}{(value?["note"] is { } note ? $" ({note})" : "")}");
                return;
            case "setcap":
                w.WriteLine($"vcpu {result["cpu"]}: {result["cap"]} {result["value"]}");
                return;
            case "rtc-nvram":
                w.WriteLine($"{result["offset"]}: {result["value"]}");
                return;
        }
        Fields(result, "", w);
    }

    private static string Cpus(JsonNode? list) =>
        list is JsonArray a && a.Count > 0 ? string.Join(",", a.Select(x => x!.ToString())) : "(none)";

    private static void Fields(JsonObject o, string prefix, TextWriter w)
    {
        var width = o.Select(kv => kv.Key.Length).DefaultIfEmpty(0).Max() + prefix.Length;
        foreach (var (key, value) in o)
        {
            var label = (prefix + key).PadRight(width);
            switch (value)
            {
                case JsonObject inner when inner.All(kv => kv.Value is JsonValue):
                    w.WriteLine($"{label}  {string.Join(" ", inner.Select(kv => $"{kv.Key}={kv.Value}"))}");
                    break;
                case JsonObject inner:
                    Fields(inner, prefix + key + ".", w);
                    break;
                case JsonArray a when a.All(x => x is JsonValue):
                    w.WriteLine($"{label}  {(a.Count == 0 ? "(none)" : string.Join(",", a.Select(x => x!.ToString())))}");
                    break;
                case JsonArray a:
                    for (var i = 0; i < a.Count; i++)
                        if (a[i] is JsonObject item) Fields(item, $"{prefix}{key}[{i}].", w);
                    break;
                default:
                    w.WriteLine($"{label}  {value}");
                    break;
            }
        }
    }
}
