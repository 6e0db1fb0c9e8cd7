using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>SIGTERM to the built `actorvisor` process: the first presses the ACPI power button, a second forces power-off.</summary>
public class TerminationSignalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorvisor-term-").FullName;

    private sealed record Running(Process Process, StringBuilder Stdout, Task<string> Stderr);

    private Running Start(byte[] image)
    {
        var kernel = Path.Combine(_dir, "guest.elf");
        File.WriteAllBytes(kernel, image);
        var dll = Path.Combine(AppContext.BaseDirectory, "actorvisor.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { dll, "run", "--kernel", kernel, "-m", "16M", "--name", "term", "--run-dir", _dir }) start.ArgumentList.Add(a);
        var p = Process.Start(start)!;
        var stdout = new StringBuilder();
        _ = Task.Run(async () =>
        {
            var buffer = new char[256];
            int n;
            while ((n = await p.StandardOutput.ReadAsync(buffer)) > 0)
                lock (stdout) stdout.Append(buffer, 0, n);
        });
        var running = new Running(p, stdout, p.StandardError.ReadToEndAsync());
        WaitFor(running, "ready\n");
        return running;
    }

    private static void WaitFor(Running r, string text)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            lock (r.Stdout)
                if (r.Stdout.ToString().Contains(text)) return;
            if (r.Process.HasExited || DateTime.UtcNow > until)
            {
                if (!r.Process.HasExited) r.Process.Kill(entireProcessTree: true);
                Assert.Fail($"the guest did not print {text.Trim()}; stdout: {r.Stdout}");
            }
            Thread.Sleep(20);
        }
    }

    private static int WaitExit(Running r)
    {
        if (!r.Process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            r.Process.Kill(entireProcessTree: true);
            Assert.Fail("actorvisor did not exit after SIGTERM");
        }
        return r.Process.ExitCode;
    }

    [Fact]
    public void SigtermPressesThePowerButtonAndAListeningGuestPowersOff()
    {
        using var r = new Disposer(Start(ControlKernels.PowerButtonGuest(listens: true)));
        Assert.Equal(0, kill(r.Value.Process.Id, SigTerm));
        Assert.Equal(1, WaitExit(r.Value));
        lock (r.Value.Stdout) Assert.Equal("ready\nbutton\n", r.Value.Stdout.ToString());
        Assert.Contains("pressing the ACPI power button", r.Value.Stderr.Result);
        Assert.Empty(Directory.GetFiles(_dir, "*.sock")); // removed on the way out
    }

    [Fact]
    public void ASecondSigtermForcesPowerOffOfAGuestThatIgnoresTheButton()
    {
        using var r = new Disposer(Start(ControlKernels.PowerButtonGuest(listens: false)));
        Assert.Equal(0, kill(r.Value.Process.Id, SigTerm));
        Thread.Sleep(500);
        Assert.False(r.Value.Process.HasExited, "one SIGTERM only asks the guest");
        Assert.Equal(0, kill(r.Value.Process.Id, SigTerm));
        Assert.Equal(1, WaitExit(r.Value));
        Assert.Contains("a second SIGTERM: forced power-off", r.Value.Stderr.Result);
    }

    private sealed class Disposer(Running value) : IDisposable
    {
        public Running Value { get; } = value;

        public void Dispose()
        {
            if (!Value.Process.HasExited) Value.Process.Kill(entireProcessTree: true);
            Value.Process.Dispose();
        }
    }

    private const int SigTerm = 15;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
