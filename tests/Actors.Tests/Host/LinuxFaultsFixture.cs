using System.Text.Json.Nodes;
using Actorvisor.Actors.Tests.Host.Control;
using Actorvisor.Host;
using Actorvisor.Host.Control;
using Actorvisor.Host.Faults;
using Actorvisor.Host.Guest;
using Actorvisor.Host.Vm;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// One boot of the default guest that meets four fault scenarios, each from its file in examples/faults/, for
/// <see cref="LinuxFaultsTests"/>. In the deterministic schedule (the guest's clock is the instruction count, so
/// the HPET reads no slower than the TSC and Linux's clocksource watchdog keeps checking the TSC; an idle wait
/// costs no wall time), with `clearcpuid=289` (TSC_ADJUST hidden, so Linux does not trust the TSC outright).
/// <list type="number">
/// <item>At start, <c>crash-uart-once.yaml</c> and <c>--supervise uart-0=restart</c>: the UART's actor crashes on
/// the kernel's 100th write to COM1 and is built again.</item>
/// <item>At the /init's <c>STEP-HPET:</c>, the rules of <c>flaky-hpet-counter.yaml</c> are added through the control
/// socket; the guest sleeps 3 s and reports its clocksource and the watchdog's messages.</item>
/// <item>The guest waits for an RTC alarm once without faults; at <c>STEP-RTC:</c> the rules of
/// <c>lose-rtc-interrupts.yaml</c> are added and it waits again.</item>
/// <item>At <c>STEP-STORM:</c> the rules of <c>sci-storm.yaml</c> are added; the guest waits (at most 60 s of its
/// time) for "nobody cared" in its log, reports IRQ 9, and the storm is removed, the host's view of the VM read
/// (`stats`, `faults report`), and the guest powers off.</item>
/// </list>
/// </summary>
public sealed class LinuxFaultsFixture : IDisposable
{
    public const string Init = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        C=/sys/devices/system/clocksource/clocksource0/current_clocksource
        echo "MARKER: actorvisor guest up"
        echo "CS-BEFORE: $(cat $C)"
        echo "STEP-HPET:"
        read line
        sleep 3
        echo "CS-AFTER: $(cat $C)"
        dmesg | grep -E "clocksource|tsc" | sed 's/^/KLOG: /'
        alarm() { echo +2 > /sys/class/rtc/rtc0/wakealarm; timeout 6 dd if=/dev/rtc0 of=/dev/null bs=8 count=1 2>/dev/null && echo woke || echo timed out; }
        echo "RTC-WAIT-1: $(alarm)"
        echo "STEP-RTC:"
        read line
        echo "RTC-WAIT-2: $(alarm)"
        echo "WAKEALARM-AFTER: [$(cat /sys/class/rtc/rtc0/wakealarm)]"
        echo "STEP-STORM:"
        read line
        i=0; while [ $i -lt 60 ] && ! dmesg | grep -q "nobody cared"; do sleep 1; i=$((i+1)); done
        dmesg | grep -E "nobody cared|Disabling IRQ|handlers:|acpi_irq" | sed 's/^/KLOG: /'
        echo "IRQ9: $(grep ' 9:' /proc/interrupts)"
        echo "STORM-SURVIVED"
        read line
        echo "AFTER-STORM: $(echo still here)"
        poweroff -f
        """;

    public const string Cmdline = "console=ttyS0 panic=-1 clearcpuid=289";
    private const string Name = "linux-faults";
    private static readonly TimeSpan Step = TimeSpan.FromMinutes(4);
    private readonly string _dir = Directory.CreateTempSubdirectory("actorvisor-linfaults-").FullName;
    private readonly ConsoleCapture _console = new();

    public string? SkipReason { get; } = GuestBoot.SkipReason;
    public string Console => _console.Text;
    public string Stderr { get; } = "";
    public int ExitStatus { get; } = -1;
    public string? Failure { get; }
    /// <summary>`ctl stats` and `ctl faults report` while the storm had just been removed.</summary>
    public JsonObject? Stats { get; }
    public JsonObject? FaultsReport { get; }
    public TimeSpan Total { get; }

    /// <summary>examples/faults/ of this checkout.</summary>
    public static string Examples
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (Directory.Exists(Path.Combine(d.FullName, "examples", "faults"))) return Path.Combine(d.FullName, "examples", "faults");
            throw new DirectoryNotFoundException("no examples/faults above " + AppContext.BaseDirectory);
        }
    }

    public LinuxFaultsFixture()
    {
        if (SkipReason is not null) return;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var guest = DebianGuest.FindCached()!;
        var initrd = Path.Combine(_dir, "init.cpio");
        DebianGuest.WriteInitramfs(guest, Init, initrd);
        using var input = new TypedInput();
        var stderr = new StringWriter();
        string[] argv = ["run", "--kernel", guest.Kernel, "--initrd", initrd, "--cmdline", Cmdline, "--deterministic",
            "--faults", Path.Combine(Examples, "crash-uart-once.yaml"), "--supervise", "uart-0=restart",
            "--name", Name, "--run-dir", _dir];
        var run = Task.Factory.StartNew(() => ActorvisorCli.Run(argv, _console, TextWriter.Synchronized(stderr),
            new ConsoleInput(input, IsTerminal: false)), TaskCreationOptions.LongRunning);
        try
        {
            WaitFor("STEP-HPET:", GuestBoot.Limit, run);
            using var client = ControlClient.Connect(ControlPaths.Socket(_dir, Name), Step);
            AddRules(client, "flaky-hpet-counter.yaml");
            input.Type("go\r"u8.ToArray());
            WaitFor("STEP-RTC:", Step, run);
            AddRules(client, "lose-rtc-interrupts.yaml");
            input.Type("go\r"u8.ToArray());
            WaitFor("STEP-STORM:", Step, run);
            AddRules(client, "sci-storm.yaml");
            input.Type("go\r"u8.ToArray());
            WaitFor("STORM-SURVIVED", Step, run);
            Result(client.Request(new JsonObject { ["verb"] = "faults", ["action"] = "remove", ["name"] = "sci-storm" }));
            Stats = Result(client.Request(new JsonObject { ["verb"] = "stats" }));
            FaultsReport = Result(client.Request(new JsonObject { ["verb"] = "faults", ["action"] = "report" }));
            input.Type("go\r"u8.ToArray());
            if (!run.Wait(Step)) throw new TimeoutException("the guest did not power off");
            ExitStatus = run.Result;
        }
        catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException or FormatException)
        {
            Failure = $"{e.Message}\nstderr: {stderr}\nconsole tail: {Tail(Console)}";
            try
            {
                using var c = ControlClient.Connect(ControlPaths.Socket(_dir, Name));
                c.Request(new JsonObject { ["verb"] = "force-poweroff" });
            }
            catch (Exception inner) when (inner is IOException or System.Net.Sockets.SocketException)
            {
            }
            run.Wait(Step);
        }
        Stderr = stderr.ToString();
        Total = clock.Elapsed;
    }

    /// <summary>Adds each rule of an example file through the control socket, as `ctl NAME faults add KEY=VALUE ...` would.</summary>
    private static void AddRules(ControlClient client, string file)
    {
        foreach (var rule in FaultScenario.RuleMaps(File.ReadAllText(Path.Combine(Examples, file)), file))
        {
            var keys = new JsonObject();
            foreach (var (k, v) in rule) keys[k] = v;
            Result(client.Request(new JsonObject { ["verb"] = "faults", ["action"] = "add", ["rule"] = keys }));
        }
    }

    private static JsonObject Result(JsonObject response) =>
        response["ok"]?.GetValue<bool>() == true
            ? response["result"]!.AsObject()
            : throw new InvalidOperationException($"control request failed: {response["error"]}");

    private void WaitFor(string line, TimeSpan limit, Task<int> run)
    {
        var until = DateTime.UtcNow + limit;
        while (!Console.Split('\n').Any(l => l.TrimEnd('\r') == line))
        {
            if (run.IsCompleted) throw new InvalidOperationException($"the VM ended (status {run.Result}) before '{line}'");
            if (DateTime.UtcNow > until) throw new TimeoutException($"no '{line}' within {limit}");
            Thread.Sleep(50);
        }
    }

    /// <summary>The console's lines (without CR).</summary>
    public IEnumerable<string> Lines => Console.Split('\n').Select(l => l.TrimEnd('\r'));

    /// <summary>What follows "KEY: " on the first line that starts so.</summary>
    public string Value(string key) =>
        Lines.FirstOrDefault(l => l.StartsWith(key + ":", StringComparison.Ordinal)) is { } l ? l[(key.Length + 1)..].Trim() : $"<no {key} line>";

    private static string Tail(string s) => s.Length > 3000 ? s[^3000..] : s;

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
