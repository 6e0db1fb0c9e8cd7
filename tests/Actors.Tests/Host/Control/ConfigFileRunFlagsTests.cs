using System.Text.RegularExpressions;
using Actorvisor.Host;
using Actorvisor.Host.Settings;
using Actorvisor.Host.Vm;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>
/// Every `run` flag has a config-file key of the same meaning (per VM, or for the whole process), paths in the
/// file are relative to it, and flags given on the command line override the file's keys.
/// </summary>
public class ConfigFileRunFlagsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("actorvisor-config-flags-").FullName;

    private static VmConfigFile.ConfigFile Parse(string yaml) => VmConfigFile.ParseFile(yaml, "/base", "vm.yaml");

    [Fact]
    public void EveryRunFlagHasAConfigKey()
    {
        using var help = new MemoryStream();
        Assert.Equal(0, ActorvisorCli.Run(["run", "--help"], help, new StringWriter()));
        var flags = Regex.Matches(System.Text.Encoding.UTF8.GetString(help.ToArray()), @"(?<![\w-])--([a-z][a-z-]+)")
            .Select(m => m.Groups[1].Value).Distinct().Except(["help", "config", "version"]).ToArray();
        Assert.Contains("deterministic", flags); // the help text was read
        Assert.Contains("trace-file", flags);
        Assert.Empty(flags.Where(f => !VmConfigFile.Keys.Contains(f) && !VmConfigFile.ProcessKeys.Contains(f)));
    }

    [Fact]
    public void TheRunFlagsKeysParseWithPathsRelativeToTheFile()
    {
        var file = Parse("""
            deterministic: true
            record: logs/input.log
            faults: faults.yaml
            fault-seed: 42
            slot: ["3,virtio-blk,disk.img,ro", "4,virtio-rng", "5,virtio-blk,/abs/b.img"]
            disk: [data.img, "/abs/c.img,ro"]
            rng: true
            net: tap=tap0
            stats: true
            run-dir: run
            trace: irq.*
            trace-sample: 0.5
            otlp: http://127.0.0.1:4318
            otlp-protocol: http/protobuf
            metrics: "9464"
            trace-file: spans.jsonl
            """);
        var vm = Assert.Single(file.Vms);
        Assert.True(vm.Deterministic);
        Assert.Equal("/base/logs/input.log", vm.Record);
        Assert.Null(vm.Replay);
        Assert.Equal(["/base/faults.yaml"], vm.Faults);
        Assert.Equal(42UL, vm.FaultSeed);
        Assert.Equal(["3,virtio-blk,/base/disk.img,ro", "4,virtio-rng", "5,virtio-blk,/abs/b.img"], vm.Slots);
        Assert.Equal(["/base/data.img", "/abs/c.img,ro"], vm.Disks);
        Assert.True(vm.Rng);
        Assert.Equal(["tap=tap0"], vm.Nets);

        var p = file.Process;
        Assert.True(p.Stats);
        Assert.Equal("/base/run", p.RunDir);
        Assert.Equal("/base/spans.jsonl", p.TraceFile);
        var telemetry = p.Telemetry(out var error);
        Assert.Null(error);
        Assert.Equal("irq.*", telemetry!.Trace);
        Assert.Equal(0.5, telemetry.SampleRatio);
        Assert.Equal(new Uri("http://127.0.0.1:4318"), telemetry.Otlp);
        Assert.Equal(Actorvisor.Host.Telemetry.TelemetryOptions.OtlpWire.HttpProtobuf, telemetry.OtlpProtocol);
        Assert.Equal(9464, telemetry.Metrics!.Port);
    }

    [Fact]
    public void ProcessKeysStandBesideVmsAndNotInsideOne()
    {
        var file = Parse("stats: true\ntrace: vm.lifecycle\nvms:\n  - name: a\n    rng: true\n  - name: b\n    deterministic: true\n");
        Assert.Equal(2, file.Vms.Count);
        Assert.True(file.Process.Stats);
        Assert.True(file.Vms[0].Rng);
        Assert.True(file.Vms[1].Deterministic);

        var inside = Assert.Throws<ConfigFileException>(() => Parse("vms:\n  - name: a\n    stats: true\n")).Message;
        Assert.Contains("vm.yaml:3:5: 'stats' is a setting of the whole process", inside);
        Assert.Contains("only stats, run-dir", Assert.Throws<ConfigFileException>(() => Parse("rng: true\nvms:\n  - name: a\n")).Message);
        Assert.Contains("trace-sample 2", Assert.Throws<ConfigFileException>(() => Parse("trace-sample: 2\n")).Message);
        Assert.Contains("fault-seed 'x'", Assert.Throws<ConfigFileException>(() => Parse("fault-seed: x\n")).Message);
        Assert.Contains("slot: -s 40,virtio-rng", Assert.Throws<ConfigFileException>(() => Parse("slot: 40,virtio-rng\n")).Message);
        Assert.Contains("metrics '10.0.0.1:80'", Assert.Throws<ConfigFileException>(() => Parse("metrics: 10.0.0.1:80\n")).Message);
    }

    [Fact]
    public void FlagsOverrideTheFilesKeysOneByOne()
    {
        var file = new VmSettings { Deterministic = true, Record = "/f/in.log", Disks = ["/f/a.img"], Rng = true, FaultSeed = 1, Nets = ["tap=a"] };
        var merged = file.OverriddenBy(new VmSettings { Disks = ["/cli/b.img"], FaultSeed = 7, Slots = ["6,virtio-rng"] });
        Assert.Equal(["/cli/b.img"], merged.Disks);
        Assert.Equal(7UL, merged.FaultSeed);
        Assert.Equal(["6,virtio-rng"], merged.Slots);
        Assert.True(merged.Deterministic);
        Assert.Equal("/f/in.log", merged.Record);
        Assert.True(merged.Rng);
        Assert.Equal(["tap=a"], merged.Nets);

        var process = new ProcessSettings { Stats = true, Trace = "irq.*", Metrics = "9000" }
            .OverriddenBy(new ProcessSettings { Trace = "io.uart*", RunDir = "/cli/run" });
        Assert.Equal(("io.uart*", "9000", "/cli/run", (bool?)true), (process.Trace, process.Metrics, process.RunDir, process.Stats));
    }

    [Fact]
    public void TheMachineKeysAreCheckedAsTheFlagsAre()
    {
        Assert.Null(ConfigRun.Machine(new VmSettings { Record = "a", Replay = "b" }, out var both));
        Assert.Equal("record and replay exclude each other", both);
        Assert.Null(ConfigRun.Machine(new VmSettings { Replay = Path.Combine(_dir, "none.log") }, out var missing));
        Assert.Contains("no such file", missing);
        Assert.Null(ConfigRun.Machine(new VmSettings { Slots = ["3,virtio-rng", "3,virtio-rng"] }, out var twice));
        Assert.NotNull(twice);

        var parts = ConfigRun.Machine(new VmSettings { Record = Path.Combine(_dir, "in.log"), Rng = true, Disks = ["/x.img,ro"] }, out var error);
        Assert.Null(error);
        Assert.Equal(Path.Combine(_dir, "in.log"), parts!.Deterministic!.RecordPath); // record implies deterministic
        Assert.Equal(["virtio-blk", "virtio-rng"], parts.Pci.Select(s => s.Device).Order());
        Assert.All(parts.Pci, s => Assert.True(s.Slot >= PciDeviceSpec.FirstFreeSlot));
    }

    [Fact]
    public void ADeterministicFaultedRunWithStatsAllFromTheFile()
    {
        File.WriteAllBytes(Path.Combine(_dir, "hello.elf"), GuestImages.HelloElf64("hello"));
        File.WriteAllText(Path.Combine(_dir, "faults.yaml"), "seed: 5\nrules:\n  - name: mute\n    device: uart-0\n    kind: pio.write\n    action: drop\n");
        var config = Path.Combine(_dir, "det.yaml");
        File.WriteAllText(config, "kernel: hello.elf\nmemory: 16M\ndeterministic: true\nfaults: faults.yaml\nstats: true\nrun-dir: sockets\n");
        var stderr = new StringWriter();
        using var stdout = new MemoryStream();
        var exit = ActorvisorCli.Run(["run", "--config", config, "--fault-seed", "77"], stdout, TextWriter.Synchronized(stderr));
        Assert.Equal(2, exit); // it halts
        Assert.Equal("", System.Text.Encoding.ASCII.GetString(stdout.ToArray())); // the file's fault rule dropped every THR write
        var text = stderr.ToString();
        Assert.Contains("deterministic run:", text);
        Assert.Contains("actorvisor: stats:", text);
        Assert.Contains("fault rule 'mute': matched 5, fired 5", text);
        Assert.True(Directory.Exists(Path.Combine(_dir, "sockets")));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
