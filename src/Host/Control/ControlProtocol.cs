using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Actorvisor.Host.Vm;
using static Actorvisor.Host.Vm.VmControl;

namespace Actorvisor.Host.Control;

/// <summary>
/// The control socket's protocol (docs/control-protocol.md): JSON, one object per line, UTF-8. The server
/// speaks first with a hello naming the protocol version; then each request gets exactly one response with
/// the request's id. This class turns a request object into a <see cref="VmControl.Command"/>, or says what
/// is wrong with it.
/// </summary>
public static class ControlProtocol
{
    /// <summary>Bumped when a request or response changes incompatibly; additions keep it.</summary>
    public const int Version = 1;
    /// <summary>The longest request line the server reads; a longer one is refused and the connection closed.</summary>
    public const int MaxLineBytes = 64 * 1024;

    public static readonly string[] Verbs =
    [
        "status", "suspend", "resume", "force-reset", "force-poweroff", "power-button", "get-active-cpus",
        "get-suspended-cpus", "get-cpu-topology", "get-regs", "set-reg", "get-lapic", "inject-nmi", "irq", "rtc-time",
        "rtc-nvram", "stats", "crash-device", "faults", "trace", "getcap", "setcap", "telemetry",
    ];

    public static JsonObject Hello(string vmName) => new()
    {
        ["hello"] = "actorvisor", ["protocol"] = Version, ["vm"] = vmName, ["pid"] = Environment.ProcessId,
    };

    public static JsonObject Response(JsonNode? id, Reply reply)
    {
        var o = new JsonObject { ["id"] = id?.DeepClone(), ["ok"] = reply.Ok };
        if (reply.Ok) o["result"] = reply.Result?.DeepClone() ?? new JsonObject();
        else o["error"] = reply.Error;
        return o;
    }

    /// <summary>The command a request names, or an error message.</summary>
    public static Command? Parse(JsonObject request, out string? error)
    {
        error = null;
        if (request["verb"] is not JsonValue v || !v.TryGetValue<string>(out var verb))
        {
            error = "the request has no \"verb\" string";
            return null;
        }
        try
        {
            return verb switch
            {
                "status" => GetStatus.Instance,
                "suspend" => Suspend.Instance,
                "resume" => VmControl.Resume.Instance,
                "force-reset" => ForceReset.Instance,
                "force-poweroff" => ForcePowerOff.Instance,
                "power-button" => PowerButton.Instance,
                "get-active-cpus" => GetActiveCpus.Instance,
                "get-suspended-cpus" => GetSuspendedCpus.Instance,
                "get-cpu-topology" => GetTopology.Instance,
                "stats" => GetStats.Instance,
                "telemetry" => GetTelemetry.Instance,
                "crash-device" => new CrashDevice(Str(request, "device")),
                "get-regs" => new GetRegs(Int(request, "cpu")),
                "get-lapic" => new GetLapic(Int(request, "cpu")),
                "inject-nmi" => new InjectNmi(Int(request, "cpu")),
                "set-reg" => new SetReg(Int(request, "cpu"), Str(request, "register"), Number(request, "value")),
                "irq" => new Irq(Str(request, "action") switch
                {
                    "assert" => IrqAction.Assert,
                    "deassert" => IrqAction.Deassert,
                    "pulse" => IrqAction.Pulse,
                    var a => throw new FormatException($"irq action '{a}': expected assert, deassert or pulse"),
                }, Int(request, "gsi")),
                "rtc-time" => request.ContainsKey("set") ? new SetRtcTime((long)Number(request, "set", signed: true)) : GetRtcTime.Instance,
                "rtc-nvram" => request.ContainsKey("set")
                    ? new SetNvram(Int(request, "offset"), Byte(request, "set"))
                    : new GetNvram(Int(request, "offset")),
                "getcap" => new GetCap(Int(request, "cpu"), request.ContainsKey("cap") ? Str(request, "cap") : null),
                "setcap" => new SetCap(Int(request, "cpu"), Str(request, "cap"), Str(request, "value") switch
                {
                    "on" or "1" or "true" => true,
                    "off" or "0" or "false" => false,
                    var x => throw new FormatException($"setcap value '{x}': expected on or off"),
                }),
                "faults" => ParseFaults(request),
                "trace" => new Trace(request.ContainsKey("classes") ? Str(request, "classes") : null,
                    request.ContainsKey("sample") ? double.Parse(Str(request, "sample"), System.Globalization.CultureInfo.InvariantCulture) : null),
                _ => throw new FormatException($"unknown verb '{verb}'; known: {string.Join(", ", Verbs)}"),
            };
        }
        catch (FormatException e)
        {
            error = e.Message;
            return null;
        }
    }

    private static FaultRules ParseFaults(JsonObject request)
    {
        var action = Str(request, "action");
        return action switch
        {
            "list" => new FaultRules(FaultsAction.List),
            "report" => new FaultRules(FaultsAction.Report),
            "clear" => new FaultRules(FaultsAction.Clear),
            "pause" => new FaultRules(FaultsAction.Pause),
            "resume" => new FaultRules(FaultsAction.Resume),
            "remove" => new FaultRules(FaultsAction.Remove, Str(request, "name")),
            "add" => new FaultRules(FaultsAction.Add, Rule: request["rule"] is JsonObject rule
                ? rule.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "")
                : throw new FormatException("\"rule\" must be an object of rule keys (docs/FAULTS.md)")),
            _ => throw new FormatException($"faults action '{action}': expected list, report, clear, pause, resume, remove or add"),
        };
    }

    private static string Str(JsonObject o, string key) =>
        o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new FormatException($"\"{key}\" must be a string");

    private static int Int(JsonObject o, string key)
    {
        var n = (long)Number(o, key, signed: true);
        return n is >= int.MinValue and <= int.MaxValue ? (int)n : throw new FormatException($"\"{key}\" is out of range");
    }

    private static byte Byte(JsonObject o, string key)
    {
        var n = Number(o, key);
        return n <= 0xFF ? (byte)n : throw new FormatException($"\"{key}\" must be 0-255 (0x00-0xff)");
    }

    /// <summary>A number, or a string holding one (decimal, or hex with 0x): 64-bit values do not survive every JSON reader as numbers.</summary>
    private static ulong Number(JsonObject o, string key, bool signed = false)
    {
        switch (o[key])
        {
            case null:
                throw new FormatException($"\"{key}\" is missing");
            case JsonValue v when v.GetValueKind() == JsonValueKind.Number:
                if (v.TryGetValue<ulong>(out var u)) return u;
                if (signed && v.TryGetValue<long>(out var l)) return (ulong)l;
                throw new FormatException($"\"{key}\" must be a whole number");
            case JsonValue v when v.TryGetValue<string>(out var s):
                if (TryParseNumber(s, out var parsed, signed)) return parsed;
                throw new FormatException($"\"{key}\": '{s}' is not a number (decimal, or hex with 0x)");
            default:
                throw new FormatException($"\"{key}\" must be a number");
        }
    }

    public static bool TryParseNumber(string text, out ulong value, bool signed = false)
    {
        text = text.Trim();
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        if (ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value)) return true;
        if (signed && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            value = (ulong)l;
            return true;
        }
        return false;
    }
}
