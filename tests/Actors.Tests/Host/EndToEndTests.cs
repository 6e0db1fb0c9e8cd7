using static Iced.Intel.AssemblerRegisters;
using System.Diagnostics;
using System.Text;
using Actorvisor.Host;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// The whole program: command line, VM supervisor, devices, vCPU thread, loader. Most tests call the
/// in-process entry point with captured streams; one runs the built `actorvisor` as its own process.
/// </summary>
public class EndToEndTests
{
    private static (int Exit, string Stdout, string Stderr) RunCli(params string[] args)
    {
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        var exit = ActorvisorCli.Run(args, stdout, stderr);
        return (exit, Encoding.ASCII.GetString(stdout.ToArray()), stderr.ToString());
    }

    private static (int Exit, string Stdout, string Stderr) RunImage(byte[] image, params string[] extra)
    {
        var path = GuestImages.WriteTemp(image, ".img");
        try
        {
            return RunCli(["run", "--kernel", path, .. extra]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void FlatBinaryPrintsHelloAndHaltsWithExitCode2()
    {
        var (exit, stdout, stderr) = RunImage(GuestImages.HelloFlat("hello"));
        Assert.Equal("", stderr);
        Assert.Equal("hello", stdout);
        Assert.Equal(2, exit);
    }

    [Fact]
    public void Elf64PrintsHelloAndHaltsWithExitCode2()
    {
        var (exit, stdout, stderr) = RunImage(GuestImages.HelloElf64("hello"), "-m", "64M", "--name", "elf64");
        Assert.Equal("", stderr);
        Assert.Equal("hello", stdout);
        Assert.Equal(2, exit);
    }

    [Fact]
    public void Elf32PrintsHelloAndHaltsWithExitCode2()
    {
        var (exit, stdout, _) = RunImage(GuestImages.HelloElf32("hello, protected mode\n"));
        Assert.Equal("hello, protected mode\n", stdout);
        Assert.Equal(2, exit);
    }

    [Fact]
    public void TripleFaultExitsWith3()
    {
        var code = GuestImages.Assemble(64, 0x200000, a => a.ud2());
        var image = GuestImages.Elf64(0x200000, new ElfSegmentSpec(0x200000, 0x200000, code, (ulong)code.Length));
        var (exit, _, stderr) = RunImage(image);
        Assert.Equal(3, exit);
        Assert.Contains("triple fault", stderr);
    }

    [Fact]
    public void MissingKernelFileExitsWith4AndSaysWhy()
    {
        var path = Path.Combine(Path.GetTempPath(), $"no-such-kernel-{Guid.NewGuid():N}.elf");
        var (exit, stdout, stderr) = RunCli("run", "--kernel", path);
        Assert.Equal(4, exit);
        Assert.Equal("", stdout);
        Assert.Contains(path, stderr);
        Assert.Contains("does not exist", stderr);
    }

    [Fact]
    public void KernelThatDoesNotFitInRamExitsWith4()
    {
        // An ELF64 whose segment sits at 512 MiB, in a 256 MiB guest.
        var image = GuestImages.Elf64(0x20000000, new ElfSegmentSpec(0x20000000, 0x20000000, [0xF4], 1));
        var (exit, _, stderr) = RunImage(image);
        Assert.Equal(4, exit);
        Assert.Contains("outside guest RAM", stderr);
    }

    [Theory]
    [InlineData("-m", "12X")]
    [InlineData("-m", "0")]
    [InlineData("--name", "bad/name")]
    [InlineData("--serial", "tcp:4444")]
    [InlineData("--serial", "file:")]
    [InlineData("-c", "cpus=3,sockets=2")]
    [InlineData("-c", "zero")]
    public void BadOptionsExitWith4AndSayWhy(string option, string value)
    {
        var (exit, _, stderr) = RunImage(GuestImages.HelloFlat("x"), option, value);
        Assert.Equal(4, exit);
        Assert.Contains(value, stderr);
    }

    [Fact]
    public void AnInitrdWithoutAKernelIsRefused()
    {
        var (exit, _, stderr) = RunCli("run", "--initrd", "/nonexistent.cpio");
        Assert.Equal(4, exit);
        Assert.Contains("--initrd needs --kernel", stderr);
    }

    [Fact]
    public void SerialFileTakesTheConsoleOutput()
    {
        var file = Path.Combine(Path.GetTempPath(), $"actorvisor-serial-{Guid.NewGuid():N}.txt");
        try
        {
            var (exit, stdout, _) = RunImage(GuestImages.HelloFlat("to the file"), "--serial", $"file:{file}");
            Assert.Equal(2, exit);
            Assert.Equal("", stdout);
            Assert.Equal("to the file", File.ReadAllText(file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Prints "B" and a newline on COM1, then pulses the reset line through the i8042 (0xFE to port 0x64).</summary>
    private static byte[] PrintThenReset() => GuestImages.Assemble(16, 0x7C00, a =>
    {
        var stop = a.CreateLabel();
        a.mov(dx, 0x3F8);
        a.mov(al, (byte)'B');
        a.@out(dx, al);
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
        a.mov(al, 0xFE);
        a.@out(0x64, al);
        a.Label(ref stop);
        a.hlt();
        a.jmp(stop);
    });

    [Fact]
    public void WithNoRebootAGuestResetEndsTheRunWithStatus0()
    {
        var (exit, stdout, stderr) = RunImage(PrintThenReset(), "--no-reboot");
        Assert.Equal(0, exit);
        Assert.Equal("B\n", stdout);
        Assert.Contains("rebooted", stderr);
    }

    /// <summary>
    /// Without --no-reboot the VM is built again from power-on state after each reset, so the guest prints
    /// again; Ctrl-A x on a terminal ends the run as a power-off.
    /// </summary>
    [Fact]
    public void AGuestResetRebootsInPlaceUntilCtrlAXQuits()
    {
        var path = GuestImages.WriteTemp(PrintThenReset(), ".img");
        try
        {
            using var stdout = new WatchedOutput();
            using var keys = new TypedInput();
            var stderr = new StringWriter();
            var run = Task.Run(() => ActorvisorCli.Run(["run", "--kernel", path], stdout, stderr, new Actorvisor.Host.Vm.ConsoleInput(keys, IsTerminal: true)));
            Assert.True(stdout.WaitFor(s => s.Split('B').Length > 3, TimeSpan.FromSeconds(60)), $"fewer than three boots: '{stdout.Text}'");
            keys.Type([0x01, (byte)'x']);
            Assert.True(run.Wait(TimeSpan.FromSeconds(60)), "Ctrl-A x did not end the run");
            Assert.Equal(1, run.Result);
            Assert.Contains("resetting the VM", stderr.ToString());
            Assert.Contains("Ctrl-A x", stderr.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Reads CMOS NVRAM byte 0x40, prints it as a digit and a newline, writes it back plus one and resets
    /// through the i8042: a boot count kept in the RTC's RAM.
    /// </summary>
    private static byte[] CountBootsInCmos() => GuestImages.Assemble(16, 0x7C00, a =>
    {
        var stop = a.CreateLabel();
        a.mov(al, 0x40);
        a.@out(0x70, al);
        a.@in(al, 0x71);
        a.mov(bl, al);
        a.add(al, (byte)'0');
        a.mov(dx, 0x3F8);
        a.@out(dx, al);
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
        a.inc(bl);
        a.mov(al, 0x40);
        a.@out(0x70, al);
        a.mov(al, bl);
        a.@out(0x71, al);
        a.mov(al, 0xFE);
        a.@out(0x64, al);
        a.Label(ref stop);
        a.hlt();
        a.jmp(stop);
    });

    /// <summary>
    /// A reboot rebuilds the VM but not its CMOS: each boot reads what the previous one wrote to NVRAM, as on
    /// a PC whose RTC runs on its battery.
    /// </summary>
    [Fact]
    public void CmosNvramSurvivesRebootsInPlace()
    {
        var path = GuestImages.WriteTemp(CountBootsInCmos(), ".img");
        try
        {
            using var stdout = new WatchedOutput();
            using var keys = new TypedInput();
            var stderr = new StringWriter();
            var run = Task.Run(() => ActorvisorCli.Run(["run", "--kernel", path], stdout, stderr, new Actorvisor.Host.Vm.ConsoleInput(keys, IsTerminal: true)));
            Assert.True(stdout.WaitFor(s => s.Contains("3\n"), TimeSpan.FromSeconds(60)), $"fewer than four boots: '{stdout.Text}'");
            keys.Type([0x01, (byte)'x']);
            Assert.True(run.Wait(TimeSpan.FromSeconds(60)), "Ctrl-A x did not end the run");
            Assert.StartsWith("0\n1\n2\n3\n", stdout.Text);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class WatchedOutput : MemoryStream
    {
        private readonly object _lock = new();

        public string Text
        {
            get { lock (_lock) return Encoding.ASCII.GetString(ToArray()); }
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            lock (_lock) base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            lock (_lock) base.Write(buffer);
        }

        public bool WaitFor(Func<string, bool> condition, TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                if (condition(Text)) return true;
                Thread.Sleep(20);
            }
            return false;
        }
    }

    [Theory]
    [InlineData("256M", 256UL << 20)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("1g", 1UL << 30)]
    [InlineData("512", 512UL << 20)] // bhyve: a bare number is MiB
    [InlineData("2048K", 2UL << 20)]
    public void MemorySizesParseAsBhyveDoes(string text, ulong bytes)
    {
        Assert.True(SizeParser.TryParse(text, out var parsed, out _));
        Assert.Equal(bytes, parsed);
    }

    [Fact]
    public async Task TheBuiltProgramRunsAsAProcess()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "actorvisor.dll");
        Assert.True(File.Exists(dll), $"{dll} is not built next to the tests");
        var kernel = GuestImages.WriteTemp(GuestImages.HelloFlat("hello"), ".bin");
        try
        {
            var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { dll, "run", "--kernel", kernel }) start.ArgumentList.Add(a);
            using var p = Process.Start(start)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await p.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail("actorvisor did not exit within 60 s");
            }
            Assert.Equal("", await stderr);
            Assert.Equal("hello", await stdout);
            Assert.Equal(2, p.ExitCode);
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
