using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Cpu;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Messages;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Cpu;

/// <summary>bhyve's capabilities on the vCPU run thread: each settable one changes the exits it counts.</summary>
public class VcpuCapabilityTests : TestKit
{
    private const ulong Load = 0x200000;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly GuestMemory _memory = new(16 << 20);
    private readonly TestProbe _parent;

    public VcpuCapabilityTests() => _parent = CreateTestProbe("parent");

    /// <summary>A vCPU with the program loaded and the capabilities set before it starts, then started.</summary>
    private IActorRef Run(Action<Assembler> program, params (string Cap, bool On)[] caps)
    {
        _memory.Write(Load, GuestImages.Assemble(64, Load, program));
        var vcpu = Sys.ActorOf(VcpuActor.Props(new VcpuOptions(0, _memory, IoBus<IActorRef>.Empty,
            cpu => CpuSetup.EnterLongMode(cpu, Load, 0x9F000), ReportTo: _parent)));
        foreach (var (cap, on) in caps)
        {
            vcpu.Tell(new VcpuProtocol.SetCap(cap, on));
            Assert.Equal(on, ExpectMsg<VcpuProtocol.CapSet>(Wait).On);
        }
        vcpu.Tell(VcpuProtocol.Start.Instance);
        ExpectMsg<VcpuProtocol.Started>(Wait);
        return vcpu;
    }

    private VcpuProtocol.Counters Counters(IActorRef vcpu)
    {
        vcpu.Tell(VcpuProtocol.GetCounters.Instance);
        return ExpectMsg<VcpuProtocol.Counters>(Wait);
    }

    private static void PauseLoop(Assembler a, int count)
    {
        var loop = a.CreateLabel();
        a.mov(ecx, count);
        a.Label(ref loop);
        a.pause();
        a.dec(ecx);
        a.jnz(loop);
        a.nop();
        a.cli();
        a.hlt();
    }

    [Fact]
    public void MtrapExitCountsAnExitForEveryInstructionRetired()
    {
        var vcpu = Run(a => PauseLoop(a, 50), ("mtrap_exit", true));
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        var c = Counters(vcpu);
        // mov, 50 x (pause, dec, jnz), nop, cli, hlt.
        Assert.Equal(1 + 50 * 3 + 3, c.Instructions);
        Assert.Equal(c.Instructions, c.Exits["mtrap"]);
        Assert.False(c.Exits.ContainsKey("pause"));
    }

    [Fact]
    public void PauseExitCountsEachPauseAndNothingElse()
    {
        var vcpu = Run(a => PauseLoop(a, 37), ("pause_exit", true));
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        var c = Counters(vcpu);
        Assert.Equal(37, c.Exits["pause"]);
        Assert.False(c.Exits.ContainsKey("mtrap"));
    }

    [Fact]
    public void WithoutTheCapabilitiesNeitherPauseNorMtrapExitsAreCounted()
    {
        var vcpu = Run(a => PauseLoop(a, 37));
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        var c = Counters(vcpu);
        Assert.Equal(1 + 37 * 3 + 3, c.Instructions);
        Assert.False(c.Exits.ContainsKey("pause"));
        Assert.False(c.Exits.ContainsKey("mtrap"));
        Assert.Equal(1, c.Exits["halt"]);
    }

    [Fact]
    public void WithHltExitOffAHaltIsPolledNotExitedUntilTheCapabilityReturns()
    {
        var vcpu = Run(a =>
        {
            a.cli();
            a.hlt();
        }, ("hlt_exit", false));
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        Thread.Sleep(200);
        var polled = Counters(vcpu);
        Assert.False(polled.Exits.ContainsKey("halt"));
        Assert.Equal(2, polled.Instructions);

        vcpu.Tell(new VcpuProtocol.SetCap("hlt_exit", true));
        ExpectMsg<VcpuProtocol.CapSet>(Wait);
        AwaitAssert(() => Assert.Equal(1, Counters(vcpu).Exits.GetValueOrDefault("halt")), Wait);
        Assert.Equal(2, Counters(vcpu).Instructions);
    }

    [Fact]
    public void GetCapsReportsBhyvesNamesWithTheCpusValues()
    {
        var vcpu = Run(a =>
        {
            a.cli();
            a.hlt();
        });
        vcpu.Tell(VcpuProtocol.GetCaps.Instance);
        var caps = ExpectMsg<VcpuProtocol.CapValues>(Wait).Values;
        Assert.Equal(VcpuCapabilities.All.Select(c => c.Name), caps.Keys);
        Assert.Equal(true, caps["hlt_exit"]);
        Assert.Equal(false, caps["mtrap_exit"]);
        Assert.Equal(false, caps["pause_exit"]);
        Assert.Equal(true, caps["unrestricted_guest"]);
        Assert.Equal(true, caps["rdtscp"]); // the default model has RDTSCP
        Assert.Null(caps["enable_invpcid"]);
        Assert.Null(caps["bpt_exit"]);

        vcpu.Tell(new VcpuProtocol.SetCap("enable_invpcid", true));
        Assert.Contains("INVPCID", ExpectMsg<LifecycleProtocol.NotAllowed>(Wait).Reason);
        vcpu.Tell(new VcpuProtocol.SetCap("unrestricted_guest", false));
        Assert.Contains("cannot be changed", ExpectMsg<LifecycleProtocol.NotAllowed>(Wait).Reason);
        vcpu.Tell(new VcpuProtocol.SetCap("unrestricted_guest", true));
        ExpectMsg<VcpuProtocol.CapSet>(Wait);
        vcpu.Tell(new VcpuProtocol.SetCap("warp_drive", true));
        Assert.Contains("unknown capability", ExpectMsg<LifecycleProtocol.NotAllowed>(Wait).Reason);
    }
}
