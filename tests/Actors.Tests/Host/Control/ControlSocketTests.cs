using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Actorvisor.Host;
using Actorvisor.Host.Control;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>
/// `actorvisor run` with its control socket, and `actorvisor ctl` / `list` as a user runs them, in-process,
/// through the real UNIX socket, against <see cref="ControlKernels.Printer"/>. Each test has its own socket directory.
/// </summary>
public class ControlSocketTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"actorvisor-ctl-{Guid.NewGuid():N}");
    private readonly List<string> _files = new();

    private sealed record RunningVm(string Name, Task<int> Exit, ConsoleCapture Console, StringWriter Stderr);

    private RunningVm Start(string name, params string[] extra)
    {
        var kernel = GuestImages.WriteTemp(ControlKernels.Printer(), ".elf");
        _files.Add(kernel);
        var console = new ConsoleCapture();
        var stderr = new StringWriter();
        var exit = Task.Factory.StartNew(() => ActorvisorCli.Run(
            ["run", "--kernel", kernel, "-m", "16M", "--name", name, "--run-dir", _dir, .. extra], console, TextWriter.Synchronized(stderr)),
            TaskCreationOptions.LongRunning);
        var socket = ControlPaths.Socket(_dir, name);
        var until = DateTime.UtcNow + Wait;
        while (!(File.Exists(socket) && ControlClient.Answers(socket)) || console.Length32 == 0)
        {
            if (exit.IsCompleted) Assert.Fail($"the VM ended early ({exit.Result}): {stderr}");
            if (DateTime.UtcNow > until) Assert.Fail("the VM's control socket did not come up");
            Thread.Sleep(20);
        }
        return new RunningVm(name, exit, console, stderr);
    }

    private (int Exit, string Stdout, string Stderr) Cli(params string[] args)
    {
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        var exit = ActorvisorCli.Run([.. args, "--run-dir", _dir], stdout, stderr);
        return (exit, Encoding.UTF8.GetString(stdout.ToArray()), stderr.ToString());
    }

    private string Ctl(string name, params string[] words)
    {
        var (exit, stdout, stderr) = Cli(["ctl", name, .. words]);
        Assert.True(exit == 0, $"ctl {string.Join(' ', words)} failed: {stderr}");
        return stdout;
    }

    private JsonObject CtlJson(string name, params string[] words)
    {
        var response = JsonNode.Parse(Ctl(name, [.. words, "--json"]))!.AsObject();
        Assert.True(response["ok"]!.GetValue<bool>());
        return response["result"]!.AsObject();
    }

    private static int Finish(RunningVm vm)
    {
        Assert.True(vm.Exit.Wait(Wait), "the VM did not end");
        return vm.Exit.Result;
    }

    [Fact]
    public void EveryVerbWorksThroughTheSocket()
    {
        var vm = Start("verbs");
        var socket = ControlPaths.Socket(_dir, "verbs");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));

        Assert.Contains("running", Ctl("verbs", "status"));
        Assert.Equal("suspended: cpus 0\n", Ctl("verbs", "suspend"));
        Assert.Equal("suspended cpus: 0\n", Ctl("verbs", "get-suspended-cpus"));
        Assert.Equal("active cpus: 0\n", Ctl("verbs", "get-active-cpus"));
        var regs = CtlJson("verbs", "get-regs", "0");
        var rip = Convert.ToUInt64(regs["rip"]!.GetValue<string>(), 16);
        Assert.InRange(rip, ControlKernels.Main, ControlKernels.IrqHandler + 0x100);
        var human = Ctl("verbs", "get-regs", "0");
        Assert.Contains("rip ", human);
        Assert.Contains("cs ", human);
        Assert.Contains("lstar=0x", human);
        Ctl("verbs", "set-reg", "0", "r12", "0x62");
        var printed = vm.Console.Length32;
        Thread.Sleep(200);
        Assert.Equal(printed, vm.Console.Length32); // suspended: nothing printed
        Assert.Contains("running", Ctl("verbs", "resume"));
        AwaitText(vm, printed, 'b');

        Assert.Contains("cpus", Ctl("verbs", "get-cpu-topology"));
        Assert.Contains("lvt_timer", Ctl("verbs", "get-lapic", "0"));
        printed = vm.Console.Length32;
        Ctl("verbs", "inject-nmi", "0");
        AwaitText(vm, printed, 'N');
        printed = vm.Console.Length32;
        Ctl("verbs", "irq", "pulse", "5");
        AwaitText(vm, printed, 'I');
        Ctl("verbs", "irq", "assert", "9");
        Ctl("verbs", "irq", "deassert", "9");

        Assert.Contains("2023-11-14T22:13:20Z", Ctl("verbs", "rtc-time", "set", "1700000000"));
        Assert.InRange(CtlJson("verbs", "rtc-time")["unix"]!.GetValue<long>(), 1_700_000_000, 1_700_000_010);
        Assert.Equal("0x40: 0x7\n", Ctl("verbs", "rtc-nvram", "0x40", "set", "7"));
        Assert.Equal("0x40: 0x7\n", Ctl("verbs", "rtc-nvram", "64"));
        Assert.Contains("instructions", Ctl("verbs", "stats"));

        Assert.Contains("powered-off", Ctl("verbs", "force-poweroff"));
        Assert.Equal(1, Finish(vm));
        Assert.False(File.Exists(socket), "the socket is removed at exit");
    }

    [Fact]
    public void ForceResetRebuildsTheVmAndKeepsItsNvram()
    {
        var vm = Start("reset");
        Ctl("reset", "rtc-nvram", "0x41", "set", "0x33");
        Ctl("reset", "rtc-time", "set", "1700000000");
        // State the reset must undo: a GSI line held high, a vCPU capability.
        Ctl("reset", "irq", "assert", "9");
        Ctl("reset", "setcap", "0", "pause_exit", "on");
        Assert.True(CtlJson("reset", "stats")["irqs"]!["9"]!["level"]!.GetValue<bool>());
        Ctl("reset", "force-reset");
        var until = DateTime.UtcNow + Wait;
        string? value = null;
        while (DateTime.UtcNow < until)
        {
            var (exit, stdout, _) = Cli("ctl", "reset", "rtc-nvram", "0x41");
            if (exit == 0) { value = stdout; break; }
            Thread.Sleep(50);
        }
        Assert.Equal("0x41: 0x33\n", value);
        // Power-on state everywhere but in the RTC, whose time and NVRAM the battery keeps.
        Assert.InRange(CtlJson("reset", "rtc-time")["unix"]!.GetValue<long>(), 1_700_000_000, 1_700_000_000 + 60);
        Assert.False(CtlJson("reset", "stats")["irqs"]!["9"]?["level"]?.GetValue<bool>() ?? false);
        Assert.Equal("off", CtlJson("reset", "getcap", "0", "pause_exit")["caps"]!["pause_exit"]!["value"]!.GetValue<string>());
        Assert.Contains("actorvisor: force-reset from the control socket; resetting the VM", vm.Stderr.ToString());
        Ctl("reset", "force-poweroff");
        Assert.Equal(1, Finish(vm));
    }

    [Fact]
    public void FaultRulesAddedAtRunTimeActAndAreReportedAndRemoved()
    {
        var vm = Start("faulty");
        // Every COM1 write is lost while the rule is there: the console stops growing.
        Ctl("faulty", "faults", "add", "name=mute", "device=uart-0", "kind=pio.write", "action=drop");
        Thread.Sleep(300); // writes already on their way land
        var muted = vm.Console.Length32;
        Thread.Sleep(500);
        Assert.Equal(muted, vm.Console.Length32);
        var list = CtlJson("faulty", "faults", "list");
        var rule = Assert.Single(list["rules"]!.AsArray())!.AsObject();
        Assert.Equal("mute", rule["name"]!.GetValue<string>());
        Assert.True(rule["fired"]!.GetValue<long>() > 0);

        var (exit, _, stderr) = Cli("ctl", "faulty", "faults", "add", "name=x", "device=floppy", "action=drop");
        Assert.Equal(1, exit);
        Assert.Contains("no device is named 'floppy'", stderr);
        (exit, _, stderr) = Cli("ctl", "faulty", "faults", "add", "name=y", "probability=2", "action=drop");
        Assert.Contains("probability 2 is not between 0 and 1", stderr);

        Ctl("faulty", "faults", "remove", "mute");
        var until = DateTime.UtcNow + Wait;
        while (vm.Console.Length32 == muted && DateTime.UtcNow < until) Thread.Sleep(20);
        Assert.True(vm.Console.Length32 > muted, "the console did not resume after the rule was removed");
        Assert.Empty(CtlJson("faulty", "faults", "list")["rules"]!.AsArray());

        var trace = CtlJson("faulty", "trace", "io.uart*", "0.5");
        Assert.Equal(("io.uart*", 0.5), (trace["classes"]!.GetValue<string>(), trace["sample"]!.GetValue<double>()));
        CtlJson("faulty", "trace", "", "1");
        Ctl("faulty", "force-poweroff");
        Assert.Equal(1, Finish(vm));
    }

    [Fact]
    public void ForceResetWithNoRebootEndsTheRunWithStatus0()
    {
        var vm = Start("noreboot", "--no-reboot");
        Ctl("noreboot", "force-reset");
        Assert.Equal(0, Finish(vm));
    }

    [Fact]
    public void BadCommandsFailClearlyAndLeaveTheVmRunning()
    {
        var vm = Start("errors");
        var (exit, _, stderr) = Cli("ctl", "errors", "get-regs", "7");
        Assert.Equal(1, exit);
        Assert.Contains("no vcpu 7: this VM has 1 (0-0)", stderr);
        (exit, _, stderr) = Cli("ctl", "errors", "set-reg", "0", "bogus", "1");
        Assert.Equal(1, exit);
        Assert.Contains("unknown register 'bogus'", stderr);
        (exit, _, stderr) = Cli("ctl", "errors", "get-regs", "zero");
        Assert.Equal(1, exit);
        Assert.Contains("'zero' is not a number", stderr);
        (exit, _, stderr) = Cli("ctl", "errors", "frobnicate");
        Assert.Equal(1, exit);
        Assert.Contains("unknown verb 'frobnicate'", stderr);
        (exit, _, stderr) = Cli("ctl", "errors", "irq", "pulse");
        Assert.Equal(1, exit);
        Assert.Contains("wrong arguments for irq", stderr);
        (exit, _, stderr) = Cli("ctl", "nosuchvm", "status");
        Assert.Equal(1, exit);
        Assert.Contains("no VM named 'nosuchvm' is running", stderr);

        // Straight on the socket: malformed JSON, a non-object, an unknown verb, then a client that leaves mid-request.
        var path = ControlPaths.Socket(_dir, "errors");
        using (var client = ControlClient.Connect(path))
        {
            Assert.Equal(ControlProtocol.Version, client.Hello["protocol"]!.GetValue<int>());
            Assert.Contains("malformed JSON", client.SendRaw("{\"verb\": ", read: true)!["error"]!.GetValue<string>());
            Assert.Contains("must be a JSON object", client.SendRaw("[1,2]", read: true)!["error"]!.GetValue<string>());
            var unknown = client.Request(new JsonObject { ["verb"] = "explode" });
            Assert.False(unknown["ok"]!.GetValue<bool>());
            Assert.Equal(1, unknown["id"]!.GetValue<int>());
            Assert.Contains("unknown verb 'explode'", unknown["error"]!.GetValue<string>());
            Assert.True(client.Request(new JsonObject { ["verb"] = "status" })["ok"]!.GetValue<bool>());
        }
        using (var leaving = ControlClient.Connect(path))
            leaving.SendRaw("{\"verb\":\"suspend\"}"); // and gone before the answer
        // The request still runs to its end: the VM becomes suspended (the status may first say suspending).
        var until = DateTime.UtcNow + Wait;
        while (!Ctl("errors", "status").Contains("suspended"))
        {
            if (DateTime.UtcNow > until) Assert.Fail("the abandoned suspend did not complete");
            Thread.Sleep(20);
        }
        Ctl("errors", "resume");

        // An oversized request is refused and that connection closed; the VM serves the next one.
        using (var big = ControlClient.Connect(path))
        {
            var refused = big.SendRaw(new string('x', ControlProtocol.MaxLineBytes + 10), read: true);
            Assert.Contains("longer than", refused!["error"]!.GetValue<string>());
            Assert.Null(big.ReadObject());
        }
        Assert.Contains("running", Ctl("errors", "status"));
        var printed = vm.Console.Length32;
        AwaitText(vm, printed, 'a');
        Ctl("errors", "force-poweroff");
        Assert.Equal(1, Finish(vm));
    }

    [Fact]
    public void ListShowsExactlyTheRunningVmsAndRemovesStaleSockets()
    {
        Directory.CreateDirectory(_dir);
        // A socket left by a process that died: bound, never listened to again.
        var stale = ControlPaths.Socket(_dir, "dead");
        StaleSocket.Create(stale);
        Assert.True(File.Exists(stale));

        var one = Start("one");
        var two = Start("two");
        var (exit, stdout, _) = Cli("list");
        Assert.Equal(0, exit);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("NAME", lines[0]);
        Assert.StartsWith("one ", lines[1]);
        Assert.Contains("running", lines[1]);
        Assert.StartsWith("two ", lines[2]);
        Assert.False(File.Exists(stale), "the stale socket is removed");
        var json = JsonNode.Parse(Cli("list", "--json").Stdout)!.AsArray();
        Assert.Equal(["one", "two"], json.Select(v => v!["name"]!.GetValue<string>()));
        Assert.All(json, v => Assert.Equal(Environment.ProcessId, v!["pid"]!.GetValue<int>()));

        // A second VM may not take a running VM's name.
        var clash = Cli("run", "--kernel", _files[0], "-m", "16M", "--name", "one");
        Assert.Equal(4, clash.Exit);
        Assert.Contains("a VM named 'one' is already running", clash.Stderr);

        Ctl("one", "force-poweroff");
        Assert.Equal(1, Finish(one));
        Assert.Equal(["two"], JsonNode.Parse(Cli("list", "--json").Stdout)!.AsArray().Select(v => v!["name"]!.GetValue<string>()));
        Ctl("two", "force-poweroff");
        Assert.Equal(1, Finish(two));
        Assert.Equal("", Cli("list").Stdout);
    }

    [Fact]
    public void TwoVmsOfOneConfigFileAreListedAndControlledApart()
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllBytes(Path.Combine(_dir, "printer.elf"), ControlKernels.Printer());
        var config = Path.Combine(_dir, "pair.yaml");
        File.WriteAllText(config, """
            vms:
              - name: left
                kernel: printer.elf
                memory: 16M
                serial: file:left.log
              - name: right
                kernel: printer.elf
                memory: 16M
                serial: file:right.log
            """);
        var stderr = new StringWriter();
        var exit = Task.Factory.StartNew(() => ActorvisorCli.Run(["run", "--config", config, "--run-dir", _dir], new MemoryStream(),
            TextWriter.Synchronized(stderr)), TaskCreationOptions.LongRunning);
        var until = DateTime.UtcNow + Wait;
        while (!(ControlClient.Answers(ControlPaths.Socket(_dir, "left")) && ControlClient.Answers(ControlPaths.Socket(_dir, "right"))))
        {
            if (exit.IsCompleted || DateTime.UtcNow > until) Assert.Fail($"the VMs did not come up: {stderr}");
            Thread.Sleep(20);
        }
        var listed = JsonNode.Parse(Cli("list", "--json").Stdout)!.AsArray();
        Assert.Equal(["left", "right"], listed.Select(v => v!["name"]!.GetValue<string>()));

        // Suspending one leaves the other running.
        Ctl("left", "suspend");
        Assert.Contains("running", Ctl("right", "status"));
        Ctl("left", "force-poweroff");
        Thread.Sleep(200);
        Assert.Contains("running", Ctl("right", "status"));
        Assert.Equal(["right"], JsonNode.Parse(Cli("list", "--json").Stdout)!.AsArray().Select(v => v!["name"]!.GetValue<string>()));
        Ctl("right", "force-reset");
        var back = DateTime.UtcNow + Wait;
        while (Cli("ctl", "right", "status").Stdout is var status && !status.Contains("running"))
        {
            if (DateTime.UtcNow > back) Assert.Fail("right did not come back after its reset");
            Thread.Sleep(50);
        }
        Ctl("right", "force-poweroff");
        Assert.True(exit.Wait(Wait));
        Assert.Equal(1, exit.Result);
        Assert.Contains("vm left: force-poweroff from the control socket (status 1)", stderr.ToString());
        Assert.Contains("vm right: force-poweroff from the control socket (status 1)", stderr.ToString());
    }

    private static void AwaitText(RunningVm vm, int from, char c)
    {
        var until = DateTime.UtcNow + Wait;
        while (!vm.Console.Text[from..].Contains(c))
        {
            if (DateTime.UtcNow > until) Assert.Fail($"the guest did not print '{c}'");
            Thread.Sleep(20);
        }
    }

    public void Dispose()
    {
        foreach (var f in _files) File.Delete(f);
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>
/// A socket file as a process that died leaves it: bound, then closed without unlink (.NET's Socket removes
/// the file it bound when disposed, so this goes to libc directly).
/// </summary>
internal static class StaleSocket
{
    public static void Create(string path)
    {
        var fd = socket(1 /* AF_UNIX */, 1 /* SOCK_STREAM */, 0);
        Assert.True(fd >= 0);
        var address = new byte[110];
        address[0] = 1; // sun_family = AF_UNIX (little-endian short)
        var bytes = System.Text.Encoding.UTF8.GetBytes(path);
        Assert.True(bytes.Length < 108);
        bytes.CopyTo(address, 2);
        Assert.Equal(0, bind(fd, address, address.Length));
        close(fd);
    }

    [DllImport("libc", SetLastError = true)] private static extern int socket(int domain, int type, int protocol);
    [DllImport("libc", SetLastError = true)] private static extern int bind(int fd, byte[] address, int length);
    [DllImport("libc", SetLastError = true)] private static extern int close(int fd);
}
