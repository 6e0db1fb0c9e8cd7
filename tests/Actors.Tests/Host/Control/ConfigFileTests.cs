using System.Text;
using Actorvisor.Host;
using Actorvisor.Host.Settings;
using Actorvisor.Host.Vm;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>`actorvisor run --config FILE`: parsing, its errors, flags over the file, and several VMs in one process.</summary>
public class ConfigFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorvisor-config-").FullName;

    private static IReadOnlyList<VmSettings> Parse(string yaml) => VmConfigFile.Parse(yaml, "/base", "vm.yaml");

    private static string Error(string yaml) => Assert.Throws<ConfigFileException>(() => Parse(yaml)).Message;

    [Fact]
    public void OneVmAtTheTopLevelTakesTheFlagsKeys()
    {
        var vm = Assert.Single(Parse("""
            name: web
            kernel: images/bzImage
            initrd: /abs/initrd.cpio
            memory: 512M
            cpus: cpus=2,sockets=1,cores=2
            cmdline: console=ttyS0
            module: ["mod.bin,hello world"]
            device: isa-debug-exit,iobase=0xf4
            serial: file:logs/web.log
            no-reboot: true
            """));
        Assert.Equal("web", vm.Name);
        Assert.Equal("/base/images/bzImage", vm.Kernel);
        Assert.Equal("/abs/initrd.cpio", vm.Initrd);
        Assert.Equal(512UL << 20, vm.Memory);
        Assert.Equal(2, vm.Cpus!.Cores);
        Assert.Equal("console=ttyS0", vm.Cmdline);
        Assert.Equal(["/base/mod.bin,hello world"], vm.Modules);
        Assert.Equal(new DeviceSpec.IsaDebugExit(0xF4, 4), Assert.Single(vm.Devices!));
        Assert.Equal("file:/base/logs/web.log", vm.Serial);
        Assert.True(vm.NoReboot);
    }

    [Fact]
    public void SupervisionMapsDevicesToPolicies()
    {
        var vm = Assert.Single(Parse("supervision:\n  uart-0: restart\n  \"*\": escalate\n"));
        Assert.Equal(DevicePolicy.Restart, vm.Supervision!.For("uart-0"));
        Assert.Equal(DevicePolicy.Escalate, vm.Supervision.For("pit"));
    }

    [Fact]
    public void FlagsOverrideTheFileKeyByKey()
    {
        var file = Assert.Single(Parse("name: a\nmemory: 64M\ncpus: 2\n"));
        var merged = file.OverriddenBy(new VmSettings { Memory = 32UL << 20 });
        Assert.Equal(32UL << 20, merged.Memory);
        Assert.Equal("a", merged.Name);
        Assert.Equal(2, merged.Cpus!.Cpus);
    }

    [Theory]
    [InlineData("memroy: 64M", "vm.yaml:1:1: unknown key 'memroy'")]
    [InlineData("name: a\nmemory: 12X", "vm.yaml:2:9: memory:")]
    [InlineData("cpus: zero", "vm.yaml:1:7: cpus:")]
    [InlineData("name: bad/name", "vm.yaml:1:7: VM name 'bad/name'")]
    [InlineData("serial: tcp:1", "serial 'tcp:1'")]
    [InlineData("no-reboot: maybe", "no-reboot 'maybe'")]
    [InlineData("device: [floppy]", "device:")]
    [InlineData("vms: []", "'vms' must be a non-empty list")]
    [InlineData("vms:\n  - kernel: a\n  - kernel: b", "each needs a 'name'")]
    [InlineData("vms:\n  - name: x\n  - name: x", "two VMs are named 'x'")]
    [InlineData("name: a\nvms:\n  - name: b", "every VM setting belongs to a VM")]
    [InlineData("kernel: [a, b]", "'kernel' must be a single value")]
    [InlineData("name: 'unterminated", "not valid YAML")]
    [InlineData("- just\n- a list", "expected a mapping")]
    [InlineData("supervision:\n  uart-0: reboot", "supervision of 'uart-0': expected stop, resume, restart, restart-power-on or escalate")]
    [InlineData("supervision: restart", "'supervision' must map device names to policies")]
    public void BadFilesAreRefusedWithTheLineAndTheProblem(string yaml, string expected) => Assert.Contains(expected, Error(yaml));

    [Fact]
    public void AMissingFileIsAClearErrorAndStatus4()
    {
        var stderr = new StringWriter();
        var exit = ActorvisorCli.Run(["run", "--config", Path.Combine(_dir, "none.yaml")], new MemoryStream(), stderr);
        Assert.Equal(4, exit);
        Assert.Contains("none.yaml", stderr.ToString());
    }

    [Fact]
    public void TwoVmsRunInOneProcessAndOneFailingDoesNotStopTheOther()
    {
        File.WriteAllBytes(Path.Combine(_dir, "hello.elf"), GuestImages.HelloElf64("hello from good"));
        // Its only segment lies below 1 MiB, where the loader refuses it: this VM fails while it is built.
        File.WriteAllBytes(Path.Combine(_dir, "bad.elf"), GuestImages.Elf64(0x2000, new ElfSegmentSpec(0x2000, 0x2000, [0xF4], 1)));
        var config = Path.Combine(_dir, "two.yaml");
        File.WriteAllText(config, """
            vms:
              - name: good
                kernel: hello.elf
                memory: 16M
                serial: file:good.log
              - name: broken
                kernel: bad.elf
                memory: 16M
                serial: file:broken.log
            """);
        var stderr = new StringWriter();
        var exit = ActorvisorCli.Run(["run", "--config", config, "--run-dir", _dir], new MemoryStream(), TextWriter.Synchronized(stderr));
        Assert.Equal(4, exit); // the worst of 2 (halted) and 4 (error)
        Assert.Equal("hello from good", File.ReadAllText(Path.Combine(_dir, "good.log")));
        Assert.Contains("vm good: Halted (status 2)", stderr.ToString());
        Assert.Contains("vm broken: ", stderr.ToString());
        Assert.Contains("(status 4)", stderr.ToString());
    }

    [Fact]
    public void ACommandLineFlagOverridesTheFilesValue()
    {
        File.WriteAllBytes(Path.Combine(_dir, "a.elf"), GuestImages.HelloElf64("from a"));
        File.WriteAllBytes(Path.Combine(_dir, "b.elf"), GuestImages.HelloElf64("from b"));
        var config = Path.Combine(_dir, "one.yaml");
        File.WriteAllText(config, "name: over\nkernel: a.elf\nmemory: 16M\n");
        using var stdout = new MemoryStream();
        var exit = ActorvisorCli.Run(["run", "--config", config, "--kernel", Path.Combine(_dir, "b.elf"), "--run-dir", _dir], stdout, new StringWriter());
        Assert.Equal(2, exit);
        Assert.Equal("from b", Encoding.ASCII.GetString(stdout.ToArray()));
    }

    [Fact]
    public void OnlyOneVmMayUseTheTerminal()
    {
        var config = Path.Combine(_dir, "tty.yaml");
        File.WriteAllText(config, "vms:\n  - name: a\n    kernel: x\n  - name: b\n    kernel: y\n");
        var stderr = new StringWriter();
        Assert.Equal(4, ActorvisorCli.Run(["run", "--config", config, "--run-dir", _dir], new MemoryStream(), stderr));
        Assert.Contains("only one VM can use the terminal", stderr.ToString());
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
