using System.Text;
using Actorvisor.Host;
using Actorvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// OS test kernels run as QEMU users run them: `actorvisor run --kernel K --cmdline ... --module ...
/// --device isa-debug-exit`, the result read from the console and the process status. The kernels are
/// our own (<see cref="MultibootKernels"/>) and print what they find, so the tests check what the guest saw.
/// </summary>
public class TestKernelTests : IDisposable
{
    private readonly List<string> _files = new();

    private string Temp(byte[] bytes, string suffix)
    {
        var path = GuestImages.WriteTemp(bytes, suffix);
        _files.Add(path);
        return path;
    }

    private static (int Exit, string Stdout, string Stderr) RunCli(params string[] args)
    {
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        var exit = ActorvisorCli.Run(args, stdout, stderr);
        return (exit, Encoding.ASCII.GetString(stdout.ToArray()), stderr.ToString());
    }

    private static string[] Lines(string stdout, string key) =>
        stdout.Split('\n').Where(l => l.StartsWith(key + "=")).Select(l => l[(key.Length + 1)..]).ToArray();

    [Fact]
    public void MultibootKernelSeesItsCommandLineModulesAndMemoryMapAndExitsThroughIsaDebugExit()
    {
        var kernel = Temp(MultibootKernels.Elf(0x100000, g => MultibootKernels.Report(g, 0x2A)), ".elf");
        var mod1 = Temp(Encoding.ASCII.GetBytes("module one"), ".mod");
        var mod2 = Temp(Encoding.ASCII.GetBytes("two"), ".mod");

        var (exit, stdout, stderr) = RunCli("run", "--kernel", kernel, "-m", "32M", "--cmdline", "console=ttyS0 answer=42",
            "--module", $"{mod1},alpha", "--module", $"{mod2},beta,with comma", "--device", "isa-debug-exit");

        Assert.Equal("", stderr);
        Assert.Equal((0x2A << 1) | 1, exit); // QEMU's isa-debug-exit status
        Assert.Equal(["2BADB002"], Lines(stdout, "magic"));
        Assert.Equal([$"{kernel} console=ttyS0 answer=42"], Lines(stdout, "cmdline")); // argv[0] is the kernel
        Assert.Equal([$"{mod1} alpha:module one:00000000", $"{mod2} beta,with comma:two:00000000"], Lines(stdout, "module"));
        Assert.Equal(["00007C00"], Lines(stdout, "mem_upper")); // 31 MiB above 1 MiB
        Assert.Equal(
        [
            "0000000000000000 000000000009FC00 00000001",
            "000000000009FC00 0000000000060400 00000002",
            "0000000000100000 0000000001F00000 00000001",
        ], Lines(stdout, "mmap"));
        Assert.EndsWith("loader=actorvisor\n", stdout); // the console drained before the VM ended
    }

    /// <summary>
    /// The interrupt case: a test kernel routes IOAPIC pin 10 to vector 0x40, masks the 8259s, enables its
    /// LAPIC, raises the line through pc-testdev's port 0x200A, and its IDT handler runs and reports.
    /// </summary>
    [Fact]
    public void PcTestdevLineReachesTheKernelsHandlerThroughTheIoApic()
    {
        const uint Idt = 0x200000, IdtPtr = 0x201000, Flag = 0x201010, Vector = 0x40, Pin = 10;
        const uint IoApic = 0xFEC00000, Lapic = 0xFEE00000;
        var kernel = Temp(MultibootKernels.Elf(0x100000, g =>
        {
            var a = g.A;
            var afterHandler = a.CreateLabel();
            var wait = a.CreateLabel();
            var done = a.CreateLabel();
            // The handler sits inline after a CALL, so the pushed return address is its address.
            a.call(afterHandler);
            g.Print("handler vector=40\n");
            a.mov(__dword_ptr[Flag], 1);
            a.mov(__dword_ptr[Lapic + 0xB0], 0);   // LAPIC EOI
            a.iretd();
            a.Label(ref afterHandler);
            a.pop(ebx);                             // handler address
            // IDT gate 0x40: 32-bit interrupt gate, DPL 0, our CS.
            a.xor(eax, eax);
            a.mov(ax, cs);
            a.shl(eax, 16);
            a.mov(ecx, ebx);
            a.and(ecx, 0xFFFF);
            a.or(eax, ecx);
            a.mov(__dword_ptr[Idt + Vector * 8], eax);
            a.mov(eax, ebx);
            a.and(eax, 0xFFFF0000);
            a.or(eax, 0x8E00);
            a.mov(__dword_ptr[Idt + Vector * 8 + 4], eax);
            a.mov(__word_ptr[IdtPtr], 256 * 8 - 1);
            a.mov(__dword_ptr[IdtPtr + 2], Idt);
            a.lidt(__fword_ptr[IdtPtr]);
            // Mask both 8259s: the IOAPIC delivers.
            a.mov(al, 0xFF);
            a.@out(0x21, al);
            a.@out(0xA1, al);
            // LAPIC on (SVR bit 8, spurious vector 0xFF), TPR 0.
            a.mov(__dword_ptr[Lapic + 0xF0], 0x1FF);
            a.mov(__dword_ptr[Lapic + 0x80], 0);
            // IOAPIC pin 10: vector 0x40, fixed, physical, edge, active high, unmasked, destination APIC 0.
            a.mov(__dword_ptr[IoApic], 0x10 + 2 * Pin);
            a.mov(__dword_ptr[IoApic + 0x10], Vector);
            a.mov(__dword_ptr[IoApic], 0x11 + 2 * Pin);
            a.mov(__dword_ptr[IoApic + 0x10], 0);
            // Raise GSI 10 through pc-testdev, then wait with STI;HLT (the STI shadow closes the race).
            a.mov(dx, (int)(0x2000 + Pin));
            a.mov(al, 1);
            a.@out(dx, al);
            // Wait with a bounded spin, not HLT: if the interrupt never comes the test must fail, not hang.
            // STI;NOP;CLI opens a one-instruction interrupt window on each pass.
            var timeout = a.CreateLabel();
            a.mov(ecx, 20_000_000);
            a.Label(ref wait);
            a.cmp(__dword_ptr[Flag], 1);
            a.je(done);
            a.sti();
            a.nop();
            a.cli();
            a.dec(ecx);
            a.jnz(wait);
            a.Label(ref timeout);
            g.Print("timeout\n");
            a.mov(eax, 0x7F);
            g.ExitWithEax();
            a.Label(ref done);
            g.Print("back in the kernel\n");
            a.mov(eax, 0x11);
            g.ExitWithEax();
        }), ".elf");

        var (exit, stdout, stderr) = RunCli("run", "--kernel", kernel, "--device", "isa-debug-exit", "--device", "pc-testdev");

        Assert.Equal("", stderr);
        Assert.Equal("handler vector=40\nback in the kernel\n", stdout);
        Assert.Equal((0x11 << 1) | 1, exit);
    }

    [Fact]
    public void AFlatMultibootKernelLoadedByItsAddressFieldsRunsToo()
    {
        var kernel = Temp(MultibootKernels.Flat(0x300000, g => MultibootKernels.Report(g, 0)), ".bin");
        var (exit, stdout, _) = RunCli("run", "--kernel", kernel, "--device", "isa-debug-exit");
        Assert.Equal(1, exit); // a write of 0 gives 1: never confused with a clean exit
        Assert.Equal([kernel], Lines(stdout, "cmdline")); // no --cmdline: argv[0] alone
        Assert.Equal(["00000000"], Lines(stdout, "mods_count"));
    }

    [Theory]
    [InlineData("isa-debug-exit,iobase=0x501,iosize=2", (ushort)0x501, 2, 0x1234u, (0x1234 << 1) | 1)] // QEMU's own defaults
    [InlineData("isa-debug-exit,iobase=0xf4,iosize=0x01", (ushort)0xF4, 1, 0x7Fu, 0xFF)]
    [InlineData("isa-debug-exit", (ushort)0xF4, 4, 0x10000u, (0x10000 << 1) | 1)] // defaults: 0xF4, 4 bytes
    public void IsaDebugExitTakesQemusOptions(string device, ushort port, int width, uint value, int status)
    {
        var kernel = Temp(MultibootKernels.Elf(0x100000, g =>
        {
            g.A.mov(dx, port);
            g.A.mov(eax, value);
            switch (width)
            {
                case 1: g.A.@out(dx, al); break;
                case 2: g.A.@out(dx, ax); break;
                default: g.A.@out(dx, eax); break;
            }
            g.A.cli();
            g.A.hlt();
        }), ".elf");
        var (exit, _, stderr) = RunCli("run", "--kernel", kernel, "--device", device);
        Assert.Equal("", stderr);
        Assert.Equal(status, exit);
    }

    [Fact]
    public void TheGuestsStatusWinsOverATripleFaultRightAfterTheWrite()
    {
        // The write is posted; the triple fault is reported to the VM by another path and may arrive first.
        var kernel = Temp(MultibootKernels.Elf(0x100000, g =>
        {
            g.A.mov(dx, Guest32.DebugExitPort);
            g.A.mov(eax, 5);
            g.A.@out(dx, eax);
            g.A.ud2(); // no IDT: #UD, #DF, triple fault
        }), ".elf");
        for (var i = 0; i < 3; i++)
        {
            var (exit, _, _) = RunCli("run", "--kernel", kernel, "--device", "isa-debug-exit");
            Assert.Equal(11, exit);
        }
    }

    [Fact]
    public void WithoutTheDeviceTheExitPortIsUnassignedAndTheKernelJustHalts()
    {
        var kernel = Temp(MultibootKernels.Elf(0x100000, g => MultibootKernels.Report(g, 7)), ".elf");
        var (exit, stdout, _) = RunCli("run", "--kernel", kernel);
        Assert.Equal(2, exit);
        Assert.EndsWith("loader=actorvisor\n", stdout);
    }

    [Fact]
    public void FwCfgReportsTheSignatureTheCpuCountAndTheRamSize()
    {
        var kernel = Temp(MultibootKernels.Elf(0x100000, g => MultibootKernels.ReportFwCfg(g, 3)), ".elf");
        var (exit, stdout, stderr) = RunCli("run", "--kernel", kernel, "-m", "96M", "--device", "isa-debug-exit");
        Assert.Equal("", stderr);
        Assert.Equal(7, exit);
        Assert.Equal(["QEMU"], Lines(stdout, "signature"));
        Assert.Equal(["00000001"], Lines(stdout, "cpus"));
        Assert.Equal(["0000000006000000"], Lines(stdout, "ram")); // 96 MiB
    }

    [Theory]
    [InlineData("virtio-rng", "unknown device 'virtio-rng'")]
    [InlineData("isa-debug-exit,port=0x80", "unknown option 'port'")]
    [InlineData("isa-debug-exit,iosize=3", "iosize must be 1, 2 or 4")]
    [InlineData("isa-debug-exit,iobase=zz", "iobase 'zz' is not a number")]
    [InlineData("isa-debug-exit,iobase=0xfffe,iosize=4", "leave the 64 KiB I/O space")]
    [InlineData("pc-testdev,x=1", "takes no options")]
    [InlineData("isa-debug-exit,iosize", "is not key=value")]
    public void BadDevicesExitWith4AndSayWhy(string device, string expected)
    {
        var kernel = Temp(GuestImages.HelloFlat("x"), ".bin");
        var (exit, stdout, stderr) = RunCli("run", "--kernel", kernel, "--device", device);
        Assert.Equal(4, exit);
        Assert.Equal("", stdout); // refused before the guest ran
        Assert.Contains(expected, stderr);
    }

    [Fact]
    public void TwoDevicesOnTheSamePortsAreRefused()
    {
        var kernel = Temp(GuestImages.HelloFlat("x"), ".bin");
        var (exit, _, stderr) = RunCli("run", "--kernel", kernel, "--device", "pc-testdev", "--device", "pc-testdev");
        Assert.Equal(4, exit);
        Assert.Contains("overlap", stderr);
    }

    [Fact]
    public void ModulesForAKernelThatIsNotMultibootAreRefused()
    {
        var kernel = Temp(GuestImages.HelloElf32("x"), ".elf");
        var (exit, stdout, stderr) = RunCli("run", "--kernel", kernel, "--module", kernel);
        Assert.Equal(4, exit);
        Assert.Equal("", stdout);
        Assert.Contains("Multiboot", stderr);
    }

    [Fact]
    public void AMissingModuleFileIsAClearError()
    {
        var kernel = Temp(MultibootKernels.Elf(0x100000, g => g.A.hlt()), ".elf");
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-module-{Guid.NewGuid():N}");
        var (exit, _, stderr) = RunCli("run", "--kernel", kernel, "--module", $"{missing},x");
        Assert.Equal(4, exit);
        Assert.Contains($"module file '{missing}' does not exist", stderr);
    }

    public void Dispose()
    {
        foreach (var f in _files) File.Delete(f);
    }
}
