using System.CommandLine;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Actorvisor.Host.Control;

namespace Actorvisor.Host;

/// <summary>
/// `actorvisor ctl NAME VERB [ARGS] [--json]` and `actorvisor list [--json]`: clients of the VMs' control
/// sockets (docs/control-protocol.md). Human-readable output by default, the response's JSON with --json.
/// Exit status: 0 when the request succeeded, 1 when the VM refused it or could not be reached.
/// </summary>
public static class ControlCommands
{
    public const int Failure = 1;

    public static Option<string> RunDirOption() => new("--run-dir")
    {
        Description = $"Directory of the control sockets (default: ${ControlPaths.EnvironmentVariable}, /run/actorvisor for root, $XDG_RUNTIME_DIR/actorvisor)",
    };

    public static Command BuildCtl(Stream stdout, TextWriter stderr)
    {
        var name = new Argument<string>("NAME") { Description = "The VM's name" };
        var words = new Argument<string[]>("VERB") { Description = $"The request and its arguments: {Usage}", Arity = ArgumentArity.OneOrMore };
        var json = new Option<bool>("--json") { Description = "Print the VM's JSON response instead of text" };
        var runDir = RunDirOption();
        var ctl = new Command("ctl", "Control a running VM through its control socket (bhyvectl's verbs)") { name, words, json, runDir };
        ctl.SetAction(parse =>
        {
            var out_ = new StreamWriter(stdout, new UTF8Encoding(false), leaveOpen: true) { AutoFlush = true };
            return Ctl(parse.GetValue(name)!, parse.GetValue(words)!, parse.GetValue(json), parse.GetValue(runDir), out_, stderr);
        });
        return ctl;
    }

    public static Command BuildList(Stream stdout, TextWriter stderr)
    {
        var json = new Option<bool>("--json") { Description = "Print a JSON array" };
        var runDir = RunDirOption();
        var list = new Command("list", "List the running VMs (stale sockets of dead processes are removed, not listed)") { json, runDir };
        list.SetAction(parse =>
        {
            var out_ = new StreamWriter(stdout, new UTF8Encoding(false), leaveOpen: true) { AutoFlush = true };
            return List(parse.GetValue(json), parse.GetValue(runDir), out_, stderr);
        });
        return list;
    }

    private const string Usage =
        "status | suspend | resume | force-reset | force-poweroff | power-button | get-active-cpus | get-suspended-cpus | " +
        "get-cpu-topology | get-regs CPU | set-reg CPU REG VALUE | get-lapic CPU | inject-nmi CPU | irq assert|deassert|pulse GSI | " +
        "rtc-time [set UNIX_SECONDS] | rtc-nvram OFFSET [set VALUE] | stats | telemetry | crash-device DEVICE | " +
        "faults list|report|clear|pause|resume | faults remove NAME | faults add KEY=VALUE... | trace [CLASSES [SAMPLE]] | " +
        "getcap CPU [CAP] | setcap CPU CAP on|off";

    /// <summary>The request for a command line's verb and arguments, or an error.</summary>
    public static JsonObject? Request(string[] words, out string? error)
    {
        error = null;
        var verb = words[0];
        var args = words[1..];
        JsonObject R(params (string Key, string Value)[] fields)
        {
            var o = new JsonObject { ["verb"] = verb };
            foreach (var (k, v) in fields) o[k] = v;
            return o;
        }
        JsonObject? result = (verb, args.Length) switch
        {
            ("status" or "suspend" or "resume" or "force-reset" or "force-poweroff" or "power-button" or "get-active-cpus"
                or "get-suspended-cpus" or "get-cpu-topology" or "stats" or "telemetry", 0) => R(),
            ("get-regs" or "get-lapic" or "inject-nmi", 1) => R(("cpu", args[0])),
            ("set-reg", 3) => R(("cpu", args[0]), ("register", args[1]), ("value", args[2])),
            ("irq", 2) => R(("action", args[0]), ("gsi", args[1])),
            ("crash-device", 1) => R(("device", args[0])),
            ("rtc-time", 0) => R(),
            ("rtc-time", 2) when args[0] == "set" => R(("set", args[1])),
            ("faults", 1) when args[0] is "list" or "report" or "clear" or "pause" or "resume" => R(("action", args[0])),
            ("faults", 2) when args[0] == "remove" => R(("action", "remove"), ("name", args[1])),
            ("faults", > 1) when args[0] == "add" && args.Skip(1).All(a => a.IndexOf('=') > 0) => FaultAdd(R(("action", "add")), args[1..]),
            ("trace", 0) => R(),
            ("trace", 1) => R(("classes", args[0])),
            ("trace", 2) => R(("classes", args[0]), ("sample", args[1])),
            ("getcap", 1) => R(("cpu", args[0])),
            ("getcap", 2) => R(("cpu", args[0]), ("cap", args[1])),
            ("setcap", 3) when args[2] is "on" or "off" => R(("cpu", args[0]), ("cap", args[1]), ("value", args[2])),
            ("rtc-nvram", 1) => R(("offset", args[0])),
            ("rtc-nvram", 3) when args[1] == "set" => R(("offset", args[0]), ("set", args[2])),
            _ => null,
        };
        if (result is null)
            error = Array.IndexOf(ControlProtocol.Verbs, verb) < 0
                ? $"unknown verb '{verb}'; verbs: {Usage}"
                : $"wrong arguments for {verb}; usage: {UsageOf(verb)}";
        return result;
    }

    /// <summary>`faults add key=value ...`: the rule's keys as in a scenario file.</summary>
    private static JsonObject FaultAdd(JsonObject request, string[] pairs)
    {
        var rule = new JsonObject();
        foreach (var p in pairs) rule[p[..p.IndexOf('=')]] = p[(p.IndexOf('=') + 1)..];
        request["rule"] = rule;
        return request;
    }

    private static string UsageOf(string verb) =>
        Usage.Split(" | ").FirstOrDefault(u => u.StartsWith(verb + " ", StringComparison.Ordinal) || u == verb) ?? verb;

    public static int Ctl(string name, string[] words, bool json, string? runDir, TextWriter stdout, TextWriter stderr)
    {
        var request = Request(words, out var error);
        if (request is null)
        {
            stderr.WriteLine($"actorvisor: ctl: {error}");
            return Failure;
        }
        var path = ControlPaths.Socket(ControlPaths.Directory(runDir), name);
        ControlClient client;
        try
        {
            client = ControlClient.Connect(path);
        }
        catch (SocketException)
        {
            // Nothing listens: no socket, or a stale one left by a process that died.
            if (File.Exists(path)) TryDelete(path);
            stderr.WriteLine($"actorvisor: no VM named '{name}' is running (no control socket at {path})");
            return Failure;
        }
        catch (IOException e)
        {
            stderr.WriteLine($"actorvisor: ctl {name}: {e.Message}");
            return Failure;
        }
        using (client)
        {
            JsonObject response;
            try
            {
                response = client.Request(request);
            }
            catch (IOException e)
            {
                stderr.WriteLine($"actorvisor: ctl {name}: {e.Message}");
                return Failure;
            }
            var ok = response["ok"]?.GetValue<bool>() == true;
            if (json) stdout.WriteLine(response.ToJsonString());
            if (!ok)
            {
                stderr.WriteLine($"actorvisor: ctl {name} {words[0]}: {response["error"]?.GetValue<string>() ?? "failed"}");
                return Failure;
            }
            if (!json) ControlFormat.Write(words[0], response["result"] as JsonObject ?? new JsonObject(), stdout);
            return 0;
        }
    }

    public static int List(bool json, string? runDir, TextWriter stdout, TextWriter stderr)
    {
        var directory = ControlPaths.Directory(runDir);
        var vms = new List<JsonObject>();
        if (Directory.Exists(directory))
            foreach (var path in Directory.GetFiles(directory, "*.sock").Order(StringComparer.Ordinal))
            {
                try
                {
                    using var client = ControlClient.Connect(path, TimeSpan.FromSeconds(5));
                    var status = client.Request(new JsonObject { ["verb"] = "status" });
                    var entry = status["result"] as JsonObject ?? new JsonObject();
                    entry["name"] ??= client.Hello["vm"]?.DeepClone();
                    entry["pid"] ??= client.Hello["pid"]?.DeepClone();
                    entry["socket"] = path;
                    // A VM whose run has ended but whose socket is not gone yet (its process is draining) is not running.
                    if (entry["state"]?.GetValue<string>() is "powered-off" or "failed") continue;
                    vms.Add((JsonObject)entry.DeepClone());
                }
                catch (SocketException)
                {
                    TryDelete(path); // a stale socket: its process is gone
                }
                catch (IOException e)
                {
                    stderr.WriteLine($"actorvisor: list: {path}: {e.Message}");
                }
            }
        if (json)
        {
            stdout.WriteLine(new JsonArray(vms.Select(v => (JsonNode)v).ToArray()).ToJsonString());
            return 0;
        }
        if (vms.Count == 0) return 0;
        stdout.WriteLine($"{"NAME",-20} {"STATE",-12} {"CPUS",4} {"PID",8}");
        foreach (var v in vms)
            stdout.WriteLine($"{v["name"],-20} {v["state"],-12} {v["cpus"],4} {v["pid"],8}");
        return 0;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
