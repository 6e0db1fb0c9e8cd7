using System.Text.Json.Nodes;
using Actorvisor.Actors.Tests.Host.Control;
using Actorvisor.Host;
using Actorvisor.Host.Control;
using Actorvisor.Host.Guest;
using Actorvisor.Host.Vm;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// One boot of the default guest driven through its control socket while it runs, for
/// <see cref="LinuxControlTests"/>: its /init prints its uptime every 0.3 s from a background loop and waits
/// for a console line. The fixture suspends it (the ticks must stop), resumes it (they must go on), injects an
/// NMI (Linux must log it), sets the RTC to 2023-11-14 22:13:20 UTC, types the line (the guest then reads the
/// RTC with hwclock) and ends the VM with force-poweroff. What it saw is kept for the assertions.
/// </summary>
public sealed class LinuxControlFixture : IDisposable
{
    public const string Init = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        ( while true; do read up rest < /proc/uptime; echo "TICK: $up"; sleep 0.3; done ) &
        read line
        kill $!
        echo "HWCLOCK: $(hwclock -r -u 2>&1)"
        echo "CONTROL-PROBE-END"
        while true; do sleep 100; done
        """;

    public const long RtcSetTo = 1_700_000_000; // 2023-11-14 22:13:20 UTC
    private static readonly TimeSpan Step = TimeSpan.FromMinutes(4);
    private readonly string _dir = Directory.CreateTempSubdirectory("actorvisor-linctl-").FullName;

    public string? SkipReason { get; } = GuestBoot.SkipReason;
    public string Console => _console.Text;
    public int ExitStatus { get; } = -1;
    public int TicksBeforeSuspend { get; }
    public int TicksWhileSuspended { get; }
    public int TicksAfterResume { get; }
    public string SuspendState { get; } = "";
    /// <summary>`stats` halt exits of vCPU 0: while hlt_exit was off (must not grow) and after it was back on.</summary>
    public long HaltExitsWhileOff { get; } = -1;
    public long HaltExitsAfterOn { get; } = -1;
    /// <summary>The guest's ticks while hlt_exit was off: it runs on, its vCPU polling for its timer interrupts.</summary>
    public int TicksWhileHltExitOff { get; }
    public string? GetcapHltExit { get; }
    /// <summary>After force-reset: the guest booted again (a second kernel banner and ticks after it).</summary>
    public bool RebootedAfterForceReset { get; }
    public string? Failure { get; }

    private readonly ConsoleCapture _console = new();

    public LinuxControlFixture()
    {
        if (SkipReason is not null) return;
        var guest = DebianGuest.FindCached()!;
        var initrd = Path.Combine(_dir, "init.cpio");
        DebianGuest.WriteInitramfs(guest, Init, initrd);
        using var input = new TypedInput();
        var stderr = new StringWriter();
        string[] argv = ["run", "--kernel", guest.Kernel, "--initrd", initrd, "--cmdline", "console=ttyS0 panic=-1",
            "--name", "linux-control", "--run-dir", _dir];
        var run = Task.Factory.StartNew(() => ActorvisorCli.Run(argv, _console, TextWriter.Synchronized(stderr),
            new ConsoleInput(input, IsTerminal: false)), TaskCreationOptions.LongRunning);
        try
        {
            WaitFor(() => Ticks() >= 3, GuestBoot.Limit, "the guest's ticks", run);
            var socket = ControlPaths.Socket(_dir, "linux-control");
            using var client = ControlClient.Connect(socket, Step);

            SuspendState = Result(client.Request(new JsonObject { ["verb"] = "suspend" }))["state"]!.GetValue<string>();
            Thread.Sleep(500); // console bytes the vCPU wrote before it stopped may still be on their way
            TicksBeforeSuspend = Ticks();
            Thread.Sleep(3000);
            TicksWhileSuspended = Ticks() - TicksBeforeSuspend;
            Result(client.Request(new JsonObject { ["verb"] = "resume" }));
            var resumedAt = Ticks();
            WaitFor(() => Ticks() >= resumedAt + 3, Step, "ticks after resume", run);
            TicksAfterResume = Ticks() - resumedAt;

            Result(client.Request(new JsonObject { ["verb"] = "inject-nmi", ["cpu"] = 0 }));
            WaitFor(() => Console.Contains("NMI received for unknown reason"), Step, "the guest's NMI message", run);

            // hlt_exit off: Linux idles in HLT, which no longer leaves the run loop; the guest still runs.
            Result(client.Request(new JsonObject { ["verb"] = "setcap", ["cpu"] = 0, ["cap"] = "hlt_exit", ["value"] = "off" }));
            GetcapHltExit = Result(client.Request(new JsonObject { ["verb"] = "getcap", ["cpu"] = 0, ["cap"] = "hlt_exit" }))["caps"]!["hlt_exit"]!["value"]!.GetValue<string>();
            var haltsAtOff = HaltExits(client);
            var ticksAtOff = Ticks();
            WaitFor(() => Ticks() >= ticksAtOff + 3, Step, "ticks with hlt_exit off", run);
            TicksWhileHltExitOff = Ticks() - ticksAtOff;
            HaltExitsWhileOff = HaltExits(client) - haltsAtOff;
            Result(client.Request(new JsonObject { ["verb"] = "setcap", ["cpu"] = 0, ["cap"] = "hlt_exit", ["value"] = "on" }));
            var haltsAtOn = HaltExits(client);
            Thread.Sleep(1000);
            HaltExitsAfterOn = HaltExits(client) - haltsAtOn;

            Result(client.Request(new JsonObject { ["verb"] = "rtc-time", ["set"] = RtcSetTo }));
            input.Type("go\r"u8.ToArray());
            WaitFor(() => Console.Contains("CONTROL-PROBE-END"), Step, "the end of the probe", run);

            // force-reset rebuilds the VM from power-on state, the RTC kept: the same kernel boots again.
            var probeEnd = Console.Length;
            Result(client.Request(new JsonObject { ["verb"] = "force-reset" }));
            WaitFor(() => Console.Length > probeEnd && Console[probeEnd..].Contains("TICK:"), GuestBoot.Limit, "ticks after force-reset", run);
            RebootedAfterForceReset = Console[probeEnd..].Contains("Linux version");
            using var again = ControlClient.Connect(socket, Step); // the rebuilt VM's socket
            Result(again.Request(new JsonObject { ["verb"] = "force-poweroff" }));
            if (!run.Wait(Step)) throw new TimeoutException("the VM did not end after force-poweroff");
            ExitStatus = run.Result;
        }
        catch (Exception e) when (e is TimeoutException or IOException or InvalidOperationException)
        {
            Failure = $"{e.Message}\nstderr: {stderr}\nconsole tail: {Tail(Console)}";
            try
            {
                using var c = ControlClient.Connect(ControlPaths.Socket(_dir, "linux-control"));
                c.Request(new JsonObject { ["verb"] = "force-poweroff" });
            }
            catch (Exception inner) when (inner is IOException or System.Net.Sockets.SocketException)
            {
            }
            run.Wait(Step);
        }
    }

    private static long HaltExits(ControlClient client) =>
        Result(client.Request(new JsonObject { ["verb"] = "stats" }))["vcpus"]![0]!["exits"]!["halt"]?.GetValue<long>() ?? 0;

    private int Ticks() => Console.Split('\n').Count(l => l.StartsWith("TICK:", StringComparison.Ordinal));

    private static JsonObject Result(JsonObject response) =>
        response["ok"]?.GetValue<bool>() == true
            ? response["result"]!.AsObject()
            : throw new InvalidOperationException($"control request failed: {response["error"]}");

    private static void WaitFor(Func<bool> done, TimeSpan limit, string what, Task<int> run)
    {
        var until = DateTime.UtcNow + limit;
        while (!done())
        {
            if (run.IsCompleted) throw new InvalidOperationException($"the VM ended (status {run.Result}) before {what}");
            if (DateTime.UtcNow > until) throw new TimeoutException($"no {what} within {limit}");
            Thread.Sleep(50);
        }
    }

    private static string Tail(string s) => s.Length > 3000 ? s[^3000..] : s;

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
