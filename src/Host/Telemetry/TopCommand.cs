using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Actorvisor.Host.Control;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Actorvisor.Host.Telemetry;

/// <summary>
/// <c>actorvisor top NAME</c>: polls the VM's control socket (verb <c>telemetry</c>) every interval and shows
/// rates between successive snapshots: exits/s by reason, interrupts/s by line and by vector, the busiest
/// devices, vCPU states with run/halt shares, and mailbox depths. A live Spectre.Console view on a terminal;
/// with <c>--plain</c> (or when stdout is not a terminal) one block of lines per interval, each line starting
/// with its kind, for scripts. Exit status 0, or 1 when the VM cannot be reached.
/// </summary>
public static class TopCommand
{
    public const int Failure = 1;

    public static Command Build(Stream stdout, TextWriter stderr)
    {
        var name = new Argument<string>("NAME") { Description = "The VM's name" };
        var interval = new Option<double>("--interval") { Description = "Seconds between snapshots", DefaultValueFactory = _ => 1.0 };
        var once = new Option<bool>("--once") { Description = "Show one interval's rates and exit (same as --iterations 1)" };
        var iterations = new Option<int?>("--iterations", "-n") { Description = "Show N intervals and exit (default: until Ctrl-C or the VM ends)" };
        var plain = new Option<bool>("--plain") { Description = "Plain lines, no terminal control (the default when stdout is not a terminal)" };
        var rows = new Option<int>("--rows") { Description = "Rows per table", DefaultValueFactory = _ => 10 };
        var runDir = ControlCommands.RunDirOption();
        var top = new Command("top", "Live view of a running VM: exits, interrupts and device accesses per second, vCPU states")
            { name, interval, once, iterations, plain, rows, runDir };
        top.SetAction(parse =>
        {
            var n = parse.GetValue(once) ? 1 : parse.GetValue(iterations);
            if (n is <= 0)
            {
                stderr.WriteLine("actorvisor: top: --iterations must be at least 1");
                return Failure;
            }
            var seconds = parse.GetValue(interval);
            if (!(seconds is >= 0.05 and <= 3600))
            {
                stderr.WriteLine("actorvisor: top: --interval must be between 0.05 and 3600 seconds");
                return Failure;
            }
            var writer = new StreamWriter(stdout, new UTF8Encoding(false), leaveOpen: true) { AutoFlush = true };
            var isPlain = parse.GetValue(plain) || Console.IsOutputRedirected || Environment.GetEnvironmentVariable("TERM") is null or "dumb";
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                cancel.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            try
            {
                return Run(parse.GetValue(name)!, TimeSpan.FromSeconds(seconds), n, isPlain, parse.GetValue(rows), parse.GetValue(runDir),
                    writer, stderr, cancel.Token);
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        });
        return top;
    }

    /// <summary>Polls <paramref name="name"/> and shows <paramref name="iterations"/> intervals (null: until cancelled or the VM ends).</summary>
    public static int Run(string name, TimeSpan interval, int? iterations, bool plain, int rows, string? runDir, TextWriter stdout,
        TextWriter stderr, CancellationToken cancel)
    {
        var path = ControlPaths.Socket(ControlPaths.Directory(runDir), name);
        ControlClient client;
        try
        {
            client = ControlClient.Connect(path, TimeSpan.FromSeconds(30));
        }
        catch (SocketException)
        {
            stderr.WriteLine($"actorvisor: no VM named '{name}' is running (no control socket at {path})");
            return Failure;
        }
        catch (IOException e)
        {
            stderr.WriteLine($"actorvisor: top {name}: {e.Message}");
            return Failure;
        }
        using (client)
        {
            LiveSnapshot previous;
            try
            {
                previous = Take(client);
            }
            catch (Exception e) when (e is IOException or FormatException)
            {
                stderr.WriteLine($"actorvisor: top {name}: {e.Message}");
                return Failure;
            }
            var console = plain ? null : AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.Yes, ColorSystem = ColorSystemSupport.Detect, Out = new AnsiConsoleOutput(stdout),
            });
            var shown = 0;
            string? ended = null;
            void Loop(Action<LiveRates> show)
            {
                while (iterations is null || shown < iterations)
                {
                    if (cancel.WaitHandle.WaitOne(interval)) return;
                    LiveSnapshot current;
                    try
                    {
                        current = Take(client);
                    }
                    catch (Exception e) when (e is IOException or FormatException)
                    {
                        ended = e.Message;
                        return;
                    }
                    if (current.Seconds <= previous.Seconds) continue;
                    show(LiveRates.Between(previous, current));
                    previous = current;
                    shown++;
                }
            }
            if (console is null)
                Loop(r =>
                {
                    WritePlain(r, rows, stdout);
                    stdout.WriteLine();
                });
            else
                console.Live(new Text($"{name}: waiting {interval.TotalSeconds:0.##} s for the first interval..."))
                    .AutoClear(false)
                    .Start(ctx => Loop(r =>
                    {
                        ctx.UpdateTarget(Render(r, rows));
                        ctx.Refresh();
                    }));
            if (ended is not null)
            {
                // The VM went away while watched: what was shown stands.
                stderr.WriteLine($"actorvisor: top {name}: {ended}");
                return shown > 0 ? 0 : Failure;
            }
            return 0;
        }
    }

    private static LiveSnapshot Take(ControlClient client)
    {
        var response = client.Request(new JsonObject { ["verb"] = "telemetry" });
        if (response["ok"]?.GetValue<bool>() != true)
            throw new IOException(response["error"]?.GetValue<string>() ?? "the VM refused the telemetry request");
        return LiveSnapshot.FromJson(response["result"] as JsonObject ?? throw new FormatException("the response has no result"));
    }

    /// <summary>
    /// The script form: a header line, then one line per row, each starting with its kind
    /// (<c>exit</c>, <c>irq</c>, <c>vector</c>, <c>device</c>, <c>vcpu</c>, <c>mailbox</c>); rates per second.
    /// </summary>
    public static void WritePlain(LiveRates r, int rows, TextWriter w)
    {
        var c = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(c, $"top vm={r.Vm} interval={r.Interval:F2}s exits/s={r.TotalExits:F1}"));
        foreach (var (reason, rate) in r.Exits.Take(rows))
            w.WriteLine(string.Create(c, $"exit    {reason,-14} {rate,12:F1}/s"));
        foreach (var (gsi, rate) in r.Raised.Take(rows))
            w.WriteLine(string.Create(c, $"irq     {Line(gsi),-14} {rate,12:F1}/s"));
        foreach (var (vector, rate) in r.Injected.Take(rows))
            w.WriteLine(string.Create(c, $"vector  {"0x" + vector.ToString("x2", c),-14} {rate,12:F1}/s"));
        foreach (var (device, reads, writes) in r.Devices.Take(rows))
            w.WriteLine(string.Create(c, $"device  {device,-14} {reads,12:F1}/s read {writes,12:F1}/s write"));
        foreach (var v in r.Vcpus)
            w.WriteLine(string.Create(c, $"vcpu    {v.Id,-3} {v.State,-13} run {v.RunShare * 100,5:F1}% halt {v.HaltShare * 100,5:F1}% " +
                                         $"exits {v.ExitsPerSecond:F1}/s instructions {v.InstructionsPerSecond:F0}/s"));
        foreach (var (actor, depth) in r.Mailboxes.Where(m => m.Value > 0).OrderByDescending(m => m.Value).Take(rows))
            w.WriteLine(string.Create(c, $"mailbox {actor,-14} {depth,12}"));
    }

    private static string Line(int gsi) => gsi < 0 ? "msi" : "gsi=" + gsi.ToString(CultureInfo.InvariantCulture);

    /// <summary>The terminal form: one table per kind, side by side where they fit.</summary>
    public static IRenderable Render(LiveRates r, int rows)
    {
        var c = CultureInfo.InvariantCulture;
        string Rate(double v) => v.ToString(v >= 100 ? "N0" : "N1", c);
        Table Make(string title, params string[] columns)
        {
            var t = new Table { Border = TableBorder.Rounded, Title = new TableTitle(title) };
            foreach (var col in columns) t.AddColumn(new TableColumn(col).RightAligned());
            t.Columns[0].LeftAligned();
            return t;
        }
        var exits = Make("exits", "reason", "per s");
        foreach (var (reason, rate) in r.Exits.Take(rows)) exits.AddRow(reason, Rate(rate));
        var irqs = Make("irqs raised", "line", "per s");
        foreach (var (gsi, rate) in r.Raised.Take(rows)) irqs.AddRow(Line(gsi), Rate(rate));
        var vectors = Make("irqs taken", "vector", "per s");
        foreach (var (vector, rate) in r.Injected.Take(rows)) vectors.AddRow("0x" + vector.ToString("x2", c), Rate(rate));
        var devices = Make("busiest devices", "device", "reads/s", "writes/s");
        foreach (var (device, reads, writes) in r.Devices.Take(rows)) devices.AddRow(Markup.Escape(device), Rate(reads), Rate(writes));
        var vcpus = Make("vCPUs", "cpu", "state", "run", "halt", "exits/s", "instr/s");
        foreach (var v in r.Vcpus)
            vcpus.AddRow(v.Id.ToString(c), Markup.Escape(v.State), (v.RunShare * 100).ToString("F0", c) + "%",
                (v.HaltShare * 100).ToString("F0", c) + "%", Rate(v.ExitsPerSecond), Rate(v.InstructionsPerSecond));
        var mailboxes = Make("mailboxes", "actor", "waiting");
        foreach (var (actor, depth) in r.Mailboxes.OrderByDescending(m => m.Value).ThenBy(m => m.Key, StringComparer.Ordinal).Take(rows))
            mailboxes.AddRow(Markup.Escape(actor), depth.ToString(c));
        var header = new Markup($"[bold]{Markup.Escape(r.Vm)}[/]  exits/s [bold]{Rate(r.TotalExits)}[/]  " +
                                $"(interval {r.Interval.ToString("F2", c)} s; Ctrl-C to quit)");
        return new Rows(header, new Columns(exits, irqs, vectors), new Columns(devices, mailboxes), vcpus);
    }
}
