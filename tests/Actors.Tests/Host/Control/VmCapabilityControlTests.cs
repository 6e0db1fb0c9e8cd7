using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Host;
using Actorvisor.Host.Control;
using Actorvisor.Host.Vm;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>
/// `ctl getcap/setcap` against the running <see cref="ControlKernels.Printer"/> (its delay loop is PAUSEs, its
/// 'I' comes from an interrupt), and `stats`' exits by reason and accesses per device.
/// </summary>
public class VmCapabilityControlTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly List<string> _files = new();

    private (IActorRef Vm, ConsoleCapture Console) Start(string name)
    {
        var kernel = GuestImages.WriteTemp(ControlKernels.Printer(delay: 2000), ".elf");
        _files.Add(kernel);
        var console = new ConsoleCapture();
        var vm = Sys.ActorOf(VmSupervisor.Props(new VmConfig(name, 16 << 20, kernel, console), TestActor, persistent: new VmPersistentState()), $"vm-{name}");
        AwaitCondition(() => console.Length32 >= 3, Wait);
        return (vm, console);
    }

    private VmControl.Reply Ask(IActorRef vm, VmControl.Command command) => vm.Ask<VmControl.Reply>(command, Wait).GetAwaiter().GetResult();

    private JsonObject Ok(IActorRef vm, VmControl.Command command)
    {
        var reply = Ask(vm, command);
        Assert.True(reply.Ok, reply.Error);
        return reply.Result!;
    }

    private long Exits(IActorRef vm, string reason) =>
        Ok(vm, VmControl.GetStats.Instance)["vcpus"]![0]!["exits"]![reason]?.GetValue<long>() ?? 0;

    [Fact]
    public void GetcapListsEveryCapabilityAndRefusesWhatTheCpuCannotChange()
    {
        var (vm, _) = Start("getcap");
        var caps = Ok(vm, new VmControl.GetCap(0))["caps"]!.AsObject();
        Assert.Equal(["hlt_exit", "mtrap_exit", "pause_exit", "unrestricted_guest", "enable_invpcid", "bpt_exit", "rdpid",
            "rdtscp", "ipi_exit", "mask_hwintr", "rflags_tf"], caps.Select(kv => kv.Key));
        Assert.Equal("on", caps["hlt_exit"]!["value"]!.GetValue<string>());
        Assert.Equal("off", caps["pause_exit"]!["value"]!.GetValue<string>());
        Assert.Equal("unsupported", caps["enable_invpcid"]!["value"]!.GetValue<string>());
        Assert.Contains("INVPCID", caps["enable_invpcid"]!["note"]!.GetValue<string>());

        Assert.Contains("is not available on vcpu 0", Ask(vm, new VmControl.GetCap(0, "bpt_exit")).Error);
        Assert.Contains("unknown capability 'hlt'", Ask(vm, new VmControl.GetCap(0, "hlt")).Error);
        Assert.Contains("is not available", Ask(vm, new VmControl.SetCap(0, "enable_invpcid", true)).Error);
        Assert.Contains("cannot be changed", Ask(vm, new VmControl.SetCap(0, "unrestricted_guest", false)).Error);
        Assert.Equal("no vcpu 2: this VM has 1 (0-0)", Ask(vm, new VmControl.SetCap(2, "pause_exit", true)).Error);
        Assert.Equal("off", Ok(vm, new VmControl.GetCap(0, "mtrap_exit"))["caps"]!["mtrap_exit"]!["value"]!.GetValue<string>());
        Sys.Stop(vm);
    }

    [Fact]
    public void PauseAndMtrapExitsAreCountedInStatsOnlyWhileTheirCapabilityIsOn()
    {
        var (vm, console) = Start("pause");
        Assert.Equal(0, Exits(vm, "pause"));
        Assert.True(Exits(vm, "pio") > 3); // every character: LSR polls and a THR write

        Assert.Equal("on", Ok(vm, new VmControl.SetCap(0, "pause_exit", true))["value"]!.GetValue<string>());
        var printed = console.Length32;
        AwaitCondition(() => console.Length32 > printed + 2, Wait);
        var pauses = Exits(vm, "pause");
        Assert.True(pauses >= 2000, $"{pauses} pause exits for two delay loops of 2000 PAUSEs");
        Ok(vm, new VmControl.SetCap(0, "pause_exit", false));
        var stopped = Exits(vm, "pause");
        printed = console.Length32;
        AwaitCondition(() => console.Length32 > printed + 2, Wait);
        Assert.Equal(stopped, Exits(vm, "pause"));

        var before = Ok(vm, new VmControl.GetRegs(0))["instructions"]!.GetValue<long>();
        Ok(vm, new VmControl.SetCap(0, "mtrap_exit", true));
        printed = console.Length32;
        AwaitCondition(() => console.Length32 > printed + 1, Wait);
        Ok(vm, new VmControl.SetCap(0, "mtrap_exit", false));
        var after = Ok(vm, new VmControl.GetRegs(0))["instructions"]!.GetValue<long>();
        // Every instruction retired while it was on is one mtrap exit (the reads of the count bracket that time).
        Assert.InRange(Exits(vm, "mtrap"), 1, after - before);
        Assert.True(Exits(vm, "mtrap") > 2000);
        Sys.Stop(vm);
    }

    [Fact]
    public void MaskHwintrHoldsAnInterruptPendingUntilItIsTurnedOff()
    {
        var (vm, console) = Start("mask");
        Ok(vm, new VmControl.SetCap(0, "mask_hwintr", true));
        Ok(vm, new VmControl.Irq(VmControl.IrqAction.Pulse, ControlKernels.IrqGsi));
        var printed = console.Length32;
        AwaitCondition(() => console.Length32 > printed + 5, Wait);
        Assert.DoesNotContain('I', console.Text);
        Ok(vm, new VmControl.InjectNmi(0)); // NMIs are not held back
        AwaitCondition(() => console.Text.Contains('N'), Wait);
        Ok(vm, new VmControl.SetCap(0, "mask_hwintr", false));
        AwaitCondition(() => console.Text.Contains('I'), Wait);
        Sys.Stop(vm);
    }

    [Fact]
    public void TheCommandLineSpellsGetcapAndSetcapAsBhyvectl()
    {
        Assert.Equal("{\"verb\":\"getcap\",\"cpu\":\"0\"}", ControlCommands.Request(["getcap", "0"], out _)!.ToJsonString());
        Assert.Equal("{\"verb\":\"setcap\",\"cpu\":\"1\",\"cap\":\"hlt_exit\",\"value\":\"off\"}",
            ControlCommands.Request(["setcap", "1", "hlt_exit", "off"], out _)!.ToJsonString());
        Assert.Null(ControlCommands.Request(["setcap", "1", "hlt_exit", "maybe"], out var error));
        Assert.Contains("setcap CPU CAP on|off", error);
        var parsed = ControlProtocol.Parse(JsonNode.Parse("{\"verb\":\"setcap\",\"cpu\":1,\"cap\":\"pause_exit\",\"value\":\"on\"}")!.AsObject(), out _);
        Assert.Equal(new VmControl.SetCap(1, "pause_exit", true), parsed);
        Assert.Equal(new VmControl.GetCap(0, "rdtscp"),
            ControlProtocol.Parse(JsonNode.Parse("{\"verb\":\"getcap\",\"cpu\":0,\"cap\":\"rdtscp\"}")!.AsObject(), out _));

        var text = new StringWriter();
        ControlFormat.Write("getcap", new JsonObject
        {
            ["cpu"] = 0,
            ["caps"] = new JsonObject { ["hlt_exit"] = new JsonObject { ["value"] = "on" }, ["rdpid"] = new JsonObject { ["value"] = "unsupported", ["note"] = "no RDPID" } },
        }, text);
        Assert.Equal("hlt_exit  on\nrdpid     unsupported (no RDPID)\n", text.ToString().ReplaceLineEndings("\n"));
    }
}
