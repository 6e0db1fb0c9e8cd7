using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Actorvisor.Actors.Tests.Host.Control;
using Actorvisor.Host;
using Actorvisor.Host.Control;
using Actorvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>
/// `actorvisor top` against a running VM, in-process through the real control socket: a guest that takes the
/// PIT's interrupt at 100 Hz (ISA IRQ 0, IOAPIC pin 2, vector 30h) and writes COM1's scratch register once per
/// tick. No exporter is configured: the counts top shows come from the VM's own counters.
/// </summary>
[Collection(TelemetryCollection.Name)]
public sealed class TopEndToEndTests : IDisposable
{
    private const int Vector = 0x30;
    private const int PitHz = 100;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"actorvisor-top-{Guid.NewGuid():N}");
    private readonly List<string> _files = new();

    [Fact]
    public void TopShowsTheTimerInterruptRateAndTheDeviceItTouches()
    {
        var kernel = GuestImages.WriteTemp(PitKernel(), ".elf");
        _files.Add(kernel);
        var stderr = new StringWriter();
        var vm = Task.Factory.StartNew(() => ActorvisorCli.Run(
            ["run", "--kernel", kernel, "-m", "16M", "--name", "ticker", "--run-dir", _dir], new ConsoleCapture(), TextWriter.Synchronized(stderr)),
            TaskCreationOptions.LongRunning);
        var socket = ControlPaths.Socket(_dir, "ticker");
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!(File.Exists(socket) && ControlClient.Answers(socket)))
        {
            if (vm.IsCompleted) Assert.Fail($"the VM ended early ({vm.Result}): {stderr}");
            if (DateTime.UtcNow > until) Assert.Fail("the VM's control socket did not come up");
            Thread.Sleep(20);
        }
        try
        {
            // The verb itself, as `ctl telemetry --json` prints it.
            var (exit, json, err) = Cli("ctl", "ticker", "telemetry", "--json");
            Assert.True(exit == 0, err);
            var result = JsonNode.Parse(json)!["result"]!.AsObject();
            Assert.Equal("ticker", result["vm"]!.GetValue<string>());
            Assert.Equal(0, Assert.Single(result["vcpus"]!.AsArray())!["cpu"]!.GetValue<int>());

            (exit, var text, err) = Cli("top", "ticker", "--iterations", "2", "--interval", "1", "--plain");
            Assert.True(exit == 0, $"top failed: {err}");
            var blocks = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, blocks.Length);
            foreach (var block in blocks)
            {
                var lines = block.Split('\n');
                Assert.StartsWith("top vm=ticker interval=", lines[0]);
                // The PIT raises ISA IRQ 0 at 100 Hz; the guest takes vector 30h as often. A loaded host delays timer
                // callbacks, so the bound is loose, but an idle or broken path shows 0.
                Assert.InRange(Rate(lines, "irq", "gsi=0"), 20, PitHz * 1.5);
                Assert.InRange(Rate(lines, "vector", "0x30"), 20, PitHz * 1.5);
                Assert.True(Rate(lines, "exit", "interrupt") > 0, block);
                Assert.True(Rate(lines, "exit", "halt") > 0, block);
                var uart = Assert.Single(lines, l => l.StartsWith("device ") && l.Contains("uart-0"));
                // "device  uart-0  R/s read  W/s write": one scratch write per tick.
                Assert.True(double.Parse(uart.Split(' ', StringSplitOptions.RemoveEmptyEntries)[4].TrimEnd('/', 's'), CultureInfo.InvariantCulture) > 0, uart);
                var vcpu = Assert.Single(lines, l => l.StartsWith("vcpu "));
                Assert.Matches(@"^vcpu +0 +(halted|running) ", vcpu);
            }

            (exit, _, err) = Cli("top", "nosuchvm", "--once", "--plain");
            Assert.Equal(1, exit);
            Assert.Contains("no VM named 'nosuchvm'", err);
        }
        finally
        {
            Cli("ctl", "ticker", "force-poweroff");
            Assert.True(vm.Wait(TimeSpan.FromSeconds(30)), "the VM did not end");
        }
    }

    /// <summary>The rate on the plain line of <paramref name="kind"/> whose key is <paramref name="key"/>.</summary>
    private static double Rate(string[] lines, string kind, string key)
    {
        var line = lines.FirstOrDefault(l => l.StartsWith(kind + " ") && l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1] == key);
        Assert.True(line is not null, $"no '{kind} {key}' line in:\n{string.Join('\n', lines)}");
        return double.Parse(line!.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2].TrimEnd('/', 's'), CultureInfo.InvariantCulture);
    }

    private (int Exit, string Stdout, string Stderr) Cli(params string[] args)
    {
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        var exit = ActorvisorCli.Run([.. args, "--run-dir", _dir], stdout, stderr);
        return (exit, Encoding.UTF8.GetString(stdout.ToArray()), stderr.ToString());
    }

    /// <summary>PIT channel 0 at 100 Hz through the IOAPIC to vector 30h; the main loop writes COM1's scratch register and halts.</summary>
    private static byte[] PitKernel()
    {
        const ulong handler = 0x201000, idt = 0x210000, idtr = 0x220000;
        const int divisor = 1193182 / PitHz;
        var main = GuestImages.Assemble(64, 0x200000, a =>
        {
            GuestImages.RouteIoApicPin64(a, pin: 2, Vector, handler, idt, idtr); // ISA IRQ 0, the PIT
            a.mov(al, 0x34);                              // PIT channel 0, lo/hi, mode 2 (rate generator)
            a.@out(0x43, al);
            a.mov(al, divisor & 0xFF);
            a.@out(0x40, al);
            a.mov(al, divisor >> 8);
            a.@out(0x40, al);
            a.sti();
            a.mov(dx, GuestImages.Com1 + 7);              // COM1 scratch register
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.@out(dx, al);
            a.hlt();
            a.inc(al);
            a.jmp(loop);
        });
        var isr = GuestImages.Assemble(64, handler, a =>
        {
            a.push(rax);
            a.mov(rax, 0xFEE00000UL);
            a.mov(__dword_ptr[rax + 0xB0], 0);             // LAPIC EOI
            a.pop(rax);
            a.iretq();
        });
        return GuestImages.Elf64(0x200000,
            new ElfSegmentSpec(0x200000, 0x200000, main, (ulong)main.Length),
            new ElfSegmentSpec(handler, handler, isr, (ulong)isr.Length));
    }

    public void Dispose()
    {
        foreach (var f in _files) File.Delete(f);
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }
}
