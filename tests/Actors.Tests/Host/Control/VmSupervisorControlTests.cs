using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Host.Vm;
using Actorvisor.Kernel.Cpu;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>The supervisor's control commands against a running tiny guest (<see cref="ControlKernels.Printer"/>).</summary>
public class VmSupervisorControlTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly List<string> _files = new();

    private (IActorRef Vm, ConsoleCapture Console, VmPersistentState State) Start(string name, int cpus = 1)
    {
        var kernel = GuestImages.WriteTemp(ControlKernels.Printer(), ".elf");
        _files.Add(kernel);
        var console = new ConsoleCapture();
        var state = new VmPersistentState();
        var config = new VmConfig(name, 16 << 20, kernel, console) { Topology = new CpuTopology(cpus, 1, cpus, 1) };
        var vm = Sys.ActorOf(VmSupervisor.Props(config, TestActor, persistent: state), $"vm-{name}");
        AwaitCondition(() => console.Length32 >= 3, Wait); // it runs and prints
        return (vm, console, state);
    }

    private VmControl.Reply Ask(IActorRef vm, VmControl.Command command) => vm.Ask<VmControl.Reply>(command, Wait).GetAwaiter().GetResult();

    private JsonObject Ok(IActorRef vm, VmControl.Command command)
    {
        var reply = Ask(vm, command);
        Assert.True(reply.Ok, reply.Error);
        return reply.Result!;
    }

    private static ulong Hex(JsonNode? node) => Convert.ToUInt64(node!.GetValue<string>()[2..], 16);

    [Fact]
    public void SuspendStopsEveryVcpuAtAnInstructionBoundaryAndResumeContinues()
    {
        var (vm, console, state) = Start("suspend", cpus: 2);
        var suspended = Ok(vm, VmControl.Suspend.Instance);
        Assert.Equal("suspended", suspended["state"]!.GetValue<string>());
        Assert.Equal([0, 1], suspended["suspended_cpus"]!.AsArray().Select(n => n!.GetValue<int>()));
        Assert.Equal(VmState.Suspended, state.Lifecycle.State);
        Assert.Equal([0, 1], Ok(vm, VmControl.GetSuspendedCpus.Instance)["cpus"]!.AsArray().Select(n => n!.GetValue<int>()));

        // Out of the guest: no instruction retires and nothing is printed while suspended.
        var before = Ok(vm, new VmControl.GetRegs(0));
        var printed = console.Length32;
        Thread.Sleep(300);
        var after = Ok(vm, new VmControl.GetRegs(0));
        Assert.Equal(before["instructions"]!.GetValue<long>(), after["instructions"]!.GetValue<long>());
        Assert.Equal(before["rip"]!.GetValue<string>(), after["rip"]!.GetValue<string>());
        Assert.Equal(printed, console.Length32);
        var rip = Hex(after["rip"]);
        Assert.InRange(rip, ControlKernels.Main, ControlKernels.IrqHandler + 0x100);
        Assert.Equal("long", after["mode"]!.GetValue<string>());
        Assert.Equal(0x8UL, Hex(after["cs"]!["selector"]));
        Assert.NotEqual(0UL, Hex(after["efer"]) & 0x400); // LMA

        Assert.Equal("running", Ok(vm, VmControl.Resume.Instance)["state"]!.GetValue<string>());
        AwaitCondition(() => console.Length32 > printed + 2, Wait);
        Assert.True(Ok(vm, new VmControl.GetRegs(0))["instructions"]!.GetValue<long>() > after["instructions"]!.GetValue<long>());
        Assert.Empty(Ok(vm, VmControl.GetSuspendedCpus.Instance)["cpus"]!.AsArray());
        Sys.Stop(vm);
    }

    [Fact]
    public void ARegisterSetWhileSuspendedChangesWhatTheGuestPrints()
    {
        var (vm, console, _) = Start("setreg");
        Ok(vm, VmControl.Suspend.Instance);
        Assert.Equal(0x61UL, Hex(Ok(vm, new VmControl.GetRegs(0))["r12"]));
        Ok(vm, new VmControl.SetReg(0, "r12", 0x62));
        Assert.Equal(0x62UL, Hex(Ok(vm, new VmControl.GetRegs(0))["r12"]));
        var printed = console.Length32;
        Ok(vm, VmControl.Resume.Instance);
        AwaitCondition(() => console.Text[printed..].Contains('b'), Wait);
        Sys.Stop(vm);
    }

    [Fact]
    public void BadRequestsAreRefusedWithAReasonAndTheVmKeepsRunning()
    {
        var (vm, console, state) = Start("bad");
        Assert.Equal("no vcpu 3: this VM has 1 (0-0)", Ask(vm, new VmControl.GetRegs(3)).Error);
        Assert.StartsWith("unknown register 'xyz'", Ask(vm, new VmControl.SetReg(0, "xyz", 1)).Error);
        Assert.Contains("#GP", Ask(vm, new VmControl.SetReg(0, "lstar", 0x8000_0000_0000_0000)).Error);
        Assert.Contains("GSIs 0-23", Ask(vm, new VmControl.Irq(VmControl.IrqAction.Pulse, 24)).Error);
        Assert.Contains("NVRAM offsets", Ask(vm, new VmControl.GetNvram(0x05)).Error);
        Assert.True(Ask(vm, VmControl.Resume.Instance).Ok); // resuming a running VM changes nothing
        Assert.Equal(VmState.Running, state.Lifecycle.State);
        var printed = console.Length32;
        AwaitCondition(() => console.Length32 > printed, Wait);
        Sys.Stop(vm);
    }

    [Fact]
    public void AnInjectedNmiAndAPulsedGsiReachTheGuestsHandlers()
    {
        var (vm, console, _) = Start("inject");
        Ok(vm, new VmControl.InjectNmi(0));
        AwaitCondition(() => console.Text.Contains('N'), Wait);
        Ok(vm, new VmControl.Irq(VmControl.IrqAction.Pulse, ControlKernels.IrqGsi));
        AwaitCondition(() => console.Text.Contains('I'), Wait);
        var lapic = Ok(vm, new VmControl.GetLapic(0));
        Assert.True(lapic["enabled"]!.GetValue<bool>());
        Assert.Empty(lapic["isr"]!.AsArray()); // the handler's EOI retired vector 40h
        Sys.Stop(vm);
    }

    [Fact]
    public void TheRtcTimeAndNvramSetFromTheHostReadBackAndOutliveAReset()
    {
        var (vm, _, state) = Start("rtc");
        var time = Ok(vm, new VmControl.SetRtcTime(1_700_000_000));
        Assert.InRange(time["unix"]!.GetValue<long>(), 1_700_000_000, 1_700_000_002);
        Assert.InRange(Ok(vm, VmControl.GetRtcTime.Instance)["unix"]!.GetValue<long>(), 1_700_000_000, 1_700_000_005);
        Assert.Equal("0x5a", Ok(vm, new VmControl.SetNvram(0x40, 0x5A))["value"]!.GetValue<string>());
        Assert.Equal("0x5a", Ok(vm, new VmControl.GetNvram(0x40))["value"]!.GetValue<string>());

        // A reset rebuilds the VM from power-on state with the same battery-backed CMOS.
        Assert.Equal("resetting", Ok(vm, VmControl.ForceReset.Instance)["state"]!.GetValue<string>());
        Assert.Equal(VmExitCode.Reset, ExpectMsg<VmProtocol.VmExited>(Wait).Code);
        Assert.Equal(VmState.Resetting, state.Lifecycle.State);
        state.Lifecycle.Move(VmState.Starting, "rebuild");
        var kernel = _files[0];
        var again = Sys.ActorOf(VmSupervisor.Props(new VmConfig("rtc", 16 << 20, kernel, new ConsoleCapture()), TestActor, persistent: state), "vm-rtc-boot2");
        Assert.Equal("0x5a", Ok(again, new VmControl.GetNvram(0x40))["value"]!.GetValue<string>());
        Assert.InRange(Ok(again, VmControl.GetRtcTime.Instance)["unix"]!.GetValue<long>(), 1_700_000_000, 1_700_000_010);
        Assert.Equal(VmState.Running, state.Lifecycle.State);
        Ok(again, VmControl.ForcePowerOff.Instance);
        var exited = ExpectMsg<VmProtocol.VmExited>(Wait);
        Assert.Equal(VmExitCode.PowerOff, exited.Code);
        Assert.Equal(1, exited.ExitStatus);
        Assert.Equal(VmState.PoweredOff, state.Lifecycle.State);
    }

    [Fact]
    public void ForcePowerOffOfASuspendedVmEndsItWithStatus1()
    {
        var (vm, _, state) = Start("off");
        Ok(vm, VmControl.Suspend.Instance);
        Ok(vm, VmControl.ForcePowerOff.Instance);
        var exited = ExpectMsg<VmProtocol.VmExited>(Wait);
        Assert.Equal(1, exited.ExitStatus);
        Assert.Contains("force-poweroff", exited.Message);
        Assert.Equal(VmState.PoweredOff, state.Lifecycle.State);
    }

    [Fact]
    public void TopologyAndActiveCpusDescribeTheVm()
    {
        var (vm, _, _) = Start("topo", cpus: 2);
        var topology = Ok(vm, VmControl.GetTopology.Instance);
        Assert.Equal(2, topology["cpus"]!.GetValue<int>());
        Assert.Equal(2, topology["cores"]!.GetValue<int>());
        // The AP waits for INIT-SIPI: it is not active, as in bhyve before the BSP starts it.
        Assert.Equal([0], Ok(vm, VmControl.GetActiveCpus.Instance)["cpus"]!.AsArray().Select(n => n!.GetValue<int>()));
        var stats = Ok(vm, VmControl.GetStats.Instance);
        Assert.True(stats["vcpus"]!.AsArray()[0]!["instructions"]!.GetValue<long>() > 0);
        Sys.Stop(vm);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        foreach (var f in _files) File.Delete(f);
    }
}
