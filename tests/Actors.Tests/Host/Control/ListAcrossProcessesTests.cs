using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Actorvisor.Host;
using Actorvisor.Host.Control;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>
/// `actorvisor list` over two processes: a VM in a child `actorvisor` process and one in this process are both
/// listed with their own pids; when the child process dies without cleaning up (SIGKILL), its socket is stale
/// and `list` removes it instead of listing a VM that is gone.
/// </summary>
public class ListAcrossProcessesTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("actorvisor-list2-").FullName;
    private Process? _child;

    private (int Exit, string Stdout) Cli(params string[] args)
    {
        using var stdout = new MemoryStream();
        var exit = ActorvisorCli.Run([.. args, "--run-dir", _dir], stdout, new StringWriter());
        return (exit, Encoding.UTF8.GetString(stdout.ToArray()));
    }

    private static void WaitUntil(Func<bool> done, string what)
    {
        var until = DateTime.UtcNow + Wait;
        while (!done())
        {
            if (DateTime.UtcNow > until) Assert.Fail($"no {what} within {Wait}");
            Thread.Sleep(50);
        }
    }

    [Fact]
    public void ListShowsTheVmsOfBothProcessesAndForgetsOneWhoseProcessDied()
    {
        var spinner = Path.Combine(_dir, "spin.elf");
        File.WriteAllBytes(spinner, ControlKernels.PowerButtonGuest(listens: false));
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "actorvisor.dll"), "run", "--kernel", spinner, "-m", "16M", "--name", "other", "--run-dir", _dir })
            start.ArgumentList.Add(a);
        _child = Process.Start(start)!;
        _ = _child.StandardOutput.ReadToEndAsync();
        _ = _child.StandardError.ReadToEndAsync();

        var printer = GuestImages.WriteTemp(ControlKernels.Printer(), ".elf");
        var console = new ConsoleCapture();
        var mine = Task.Factory.StartNew(() => ActorvisorCli.Run(
            ["run", "--kernel", printer, "-m", "16M", "--name", "mine", "--run-dir", _dir], console, new StringWriter()), TaskCreationOptions.LongRunning);
        try
        {
            var otherSocket = ControlPaths.Socket(_dir, "other");
            WaitUntil(() => File.Exists(otherSocket) && ControlClient.Answers(otherSocket), "control socket of the child's VM");
            WaitUntil(() => ControlClient.Answers(ControlPaths.Socket(_dir, "mine")), "control socket of this process's VM");

            var listed = JsonNode.Parse(Cli("list", "--json").Stdout)!.AsArray();
            Assert.Equal(["mine", "other"], listed.Select(v => v!["name"]!.GetValue<string>()).Order());
            Assert.Equal(Environment.ProcessId, listed.Single(v => v!["name"]!.GetValue<string>() == "mine")!["pid"]!.GetValue<int>());
            Assert.Equal(_child.Id, listed.Single(v => v!["name"]!.GetValue<string>() == "other")!["pid"]!.GetValue<int>());

            // SIGKILL: the child cannot remove its socket, which stays behind with nobody listening.
            _child.Kill();
            Assert.True(_child.WaitForExit(Wait));
            Assert.True(File.Exists(otherSocket));
            var (exit, text) = Cli("list");
            Assert.Equal(0, exit);
            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, lines.Length); // the header and "mine"
            Assert.StartsWith("mine ", lines[1]);
            Assert.False(File.Exists(otherSocket), "the dead process's socket is removed");
        }
        finally
        {
            Cli("ctl", "mine", "force-poweroff");
            Assert.True(mine.Wait(Wait));
            File.Delete(printer);
        }
        Assert.Equal(1, mine.Result);
    }

    public void Dispose()
    {
        if (_child is { HasExited: false }) _child.Kill(entireProcessTree: true);
        _child?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
