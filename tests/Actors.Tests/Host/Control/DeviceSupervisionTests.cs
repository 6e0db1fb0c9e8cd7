using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Host.Vm;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>A device actor that fails (Akka's Kill, as `ctl crash-device` sends) is stopped, resumed, restarted or escalated per its policy.</summary>
public class DeviceSupervisionTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _dir = Directory.CreateTempSubdirectory("actorvisor-supervision-").FullName;

    [Fact]
    public void TheMostSpecificPatternWins()
    {
        var s = new DeviceSupervision(new Dictionary<string, DevicePolicy>
        {
            ["*"] = DevicePolicy.Escalate, ["uart-*"] = DevicePolicy.Resume, ["uart-0"] = DevicePolicy.Restart,
        });
        Assert.Equal(DevicePolicy.Restart, s.For("uart-0"));
        Assert.Equal(DevicePolicy.Resume, s.For("uart-1"));
        Assert.Equal(DevicePolicy.Escalate, s.For("rtc"));
        Assert.Equal(DevicePolicy.Stop, DeviceSupervision.Default.For("rtc"));
        Assert.True(DeviceSupervision.TryParsePolicy("Restart", out var p) && p == DevicePolicy.Restart);
        Assert.True(DeviceSupervision.TryParsePolicy("restart-power-on", out var powerOn) && powerOn == DevicePolicy.RestartPowerOn);
        Assert.Equal("restart-power-on", DeviceSupervision.NameOf(DevicePolicy.RestartPowerOn));
        Assert.False(DeviceSupervision.TryParsePolicy("reboot", out _));
        Assert.False(DeviceSupervision.TryParsePolicy("2", out _));
    }

    private (IActorRef Vm, ConsoleCapture Console, VmPersistentState State) Start(string name, params (string Device, DevicePolicy Policy)[] policies)
    {
        var kernel = Path.Combine(_dir, name + ".elf");
        File.WriteAllBytes(kernel, ControlKernels.Printer());
        var console = new ConsoleCapture();
        var state = new VmPersistentState();
        var config = new VmConfig(name, 16 << 20, kernel, console)
        {
            Supervision = new DeviceSupervision(policies.ToDictionary(p => p.Device, p => p.Policy)),
            DumpDirectory = _dir,
        };
        var vm = Sys.ActorOf(VmSupervisor.Props(config, TestActor, persistent: state), $"vm-{name}");
        AwaitCondition(() => console.Length32 >= 3, Wait);
        return (vm, console, state);
    }

    private JsonObject Ok(IActorRef vm, VmControl.Command command)
    {
        var reply = vm.Ask<VmControl.Reply>(command, Wait).GetAwaiter().GetResult();
        Assert.True(reply.Ok, reply.Error);
        return reply.Result!;
    }

    [Fact]
    public void ByDefaultAFailingDeviceEndsTheVmWithStatus4AndSaysWhich()
    {
        var (vm, _, state) = Start("stop");
        Assert.Equal("stop", Ok(vm, new VmControl.CrashDevice("uart-0"))["policy"]!.GetValue<string>());
        var exited = ExpectMsg<VmProtocol.VmExited>(Wait);
        Assert.Equal(VmExitCode.Error, exited.Code);
        Assert.Contains("uart-0 failed: ActorKilledException", exited.Message);
        Assert.Equal(VmState.Failed, state.Lifecycle.State);
    }

    [Fact]
    public void ARestartedUartServesTheGuestAgain()
    {
        var (vm, console, state) = Start("restart", ("uart-*", DevicePolicy.Restart));
        Ok(vm, new VmControl.CrashDevice("uart-0"));
        AwaitCondition(() => Ok(vm, VmControl.GetStats.Instance)["device_failures"]!.AsArray().Count == 1, Wait);
        var printed = console.Length32;
        AwaitCondition(() => console.Length32 > printed + 3, Wait);
        var failure = Ok(vm, VmControl.GetStats.Instance)["device_failures"]!.AsArray().Single()!;
        Assert.Equal("uart-0", failure["device"]!.GetValue<string>());
        Assert.Equal("restart", failure["policy"]!.GetValue<string>());
        Assert.Equal(VmState.Running, state.Lifecycle.State);
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Sys.Stop(vm);
    }

    [Fact]
    public void AResumedDeviceKeepsRunning()
    {
        var (vm, console, state) = Start("resume", ("pit", DevicePolicy.Resume));
        Ok(vm, new VmControl.CrashDevice("pit"));
        AwaitCondition(() => Ok(vm, VmControl.GetStats.Instance)["device_failures"]!.AsArray().Count == 1, Wait);
        var printed = console.Length32;
        AwaitCondition(() => console.Length32 > printed + 3, Wait);
        Assert.Equal(VmState.Running, state.Lifecycle.State);
        Sys.Stop(vm);
    }

    [Fact]
    public void AnEscalatedFailureSuspendsTheVmAndWritesAStateDump()
    {
        var (vm, console, state) = Start("escalate", ("*", DevicePolicy.Escalate));
        Ok(vm, new VmControl.CrashDevice("rtc"));
        AwaitCondition(() => Directory.GetFiles(_dir, "escalate-rtc-*.dump.json").Length == 1, Wait);
        Assert.Equal(VmState.Suspended, state.Lifecycle.State);
        var dump = JsonNode.Parse(File.ReadAllText(Directory.GetFiles(_dir, "escalate-rtc-*.dump.json")[0]))!;
        Assert.Equal("rtc", dump["device"]!.GetValue<string>());
        Assert.Contains("ActorKilledException", dump["error"]!.GetValue<string>());
        var rip = Convert.ToUInt64(dump["dump"]!["vcpus"]![0]!["registers"]!["rip"]!.GetValue<string>(), 16);
        Assert.InRange(rip, ControlKernels.Main, ControlKernels.IrqHandler + 0x100);

        var printed = console.Length32;
        Thread.Sleep(300);
        Assert.Equal(printed, console.Length32);
        Ok(vm, VmControl.Resume.Instance);
        AwaitCondition(() => console.Length32 > printed + 3, Wait);
        // The RTC was kept as it was: it still answers.
        Assert.Equal("0x0", Ok(vm, new VmControl.GetNvram(0x50))["value"]!.GetValue<string>());
        Sys.Stop(vm);
    }

    [Fact]
    public void OnlyDevicesCanBeCrashed()
    {
        var (vm, _, _) = Start("names");
        var reply = vm.Ask<VmControl.Reply>(new VmControl.CrashDevice("cpu-0"), Wait).GetAwaiter().GetResult();
        Assert.StartsWith("no device 'cpu-0'; devices: ", reply.Error);
        Assert.Contains("uart-0", reply.Error);
        Sys.Stop(vm);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        Directory.Delete(_dir, recursive: true);
    }
}
