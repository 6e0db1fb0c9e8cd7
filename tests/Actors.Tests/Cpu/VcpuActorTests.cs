using System.Text;
using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Cpu;
using Actorvisor.Actors.Devices.Uart;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Messages;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Actorvisor.Kernel.Messages.AccessProtocol;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Cpu;

/// <summary>The vCPU actor and its run thread, wired to a real UART actor through the bus.</summary>
public class VcpuActorTests : TestKit, IDisposable
{
    private const ulong Load = 0x200000;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly GuestMemory _memory = new(16 << 20);
    private readonly TestProbe _parent;
    private readonly TestProbe _irq;
    private readonly MemoryStream _console = new();
    private readonly IActorRef _uart;

    public VcpuActorTests()
    {
        _parent = CreateTestProbe("parent");
        _irq = CreateTestProbe("irq");
        _uart = Sys.ActorOf(UartActor.Props(_irq, 4, _console), "uart-0");
    }

    private IActorRef StartVcpu(Action<Assembler> program, IoBus<IActorRef>? bus = null, TimeSpan? readTimeout = null, bool start = true)
    {
        _memory.Write(Load, GuestImages.Assemble(64, Load, program));
        bus ??= IoBus<IActorRef>.Empty.AddPio(GuestImages.Com1, 8, _uart);
        var vcpu = Sys.ActorOf(VcpuActor.Props(new VcpuOptions(0, _memory, bus,
            cpu => CpuSetup.EnterLongMode(cpu, Load, 0x9F000), readTimeout, _parent)));
        if (start)
        {
            vcpu.Tell(VcpuProtocol.Start.Instance);
            ExpectMsg<VcpuProtocol.Started>(Wait);
        }
        return vcpu;
    }

    private CpuRegisters Registers(IActorRef vcpu)
    {
        vcpu.Tell(VcpuProtocol.GetRegisters.Instance);
        return ExpectMsg<VcpuProtocol.Registers>(Wait).State;
    }

    [Fact]
    public void GuestOutputReachesTheUartSinkThroughTheBus()
    {
        var code = GuestImages.Hello(64, Load, "hello from the guest\n");
        _memory.Write(Load, code);
        var vcpu = Sys.ActorOf(VcpuActor.Props(new VcpuOptions(0, _memory,
            IoBus<IActorRef>.Empty.AddPio(GuestImages.Com1, 8, _uart),
            cpu => CpuSetup.EnterLongMode(cpu, Load, 0x9F000), ReportTo: _parent)));
        vcpu.Tell(VcpuProtocol.Start.Instance);
        ExpectMsg<VcpuProtocol.Started>(Wait);
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);

        // The halt report left the vCPU thread after its writes were queued at the UART: asking now sees them.
        _uart.Tell(UartProtocol.GetStatus.Instance);
        var status = ExpectMsg<UartProtocol.Status>(Wait);
        Assert.Equal(21, status.TransmittedBytes);
        Assert.Equal("hello from the guest\n", Encoding.ASCII.GetString(_console.ToArray()));
    }

    [Fact]
    public void PortReadsReturnTheModelsLiveRegisterValues()
    {
        _uart.Tell(new UartProtocol.HostInput("A"u8.ToArray()));
        var vcpu = StartVcpu(a =>
        {
            a.mov(dx, GuestImages.Com1 + 7); // SCR
            a.mov(al, 0x5A);
            a.@out(dx, al);
            a.@in(al, dx);
            a.mov(bl, al);                   // BL = scratch read back
            a.mov(dx, GuestImages.Com1Lsr);
            a.@in(al, dx);
            a.mov(cl, al);                   // CL = LSR with data ready
            a.mov(dx, GuestImages.Com1);
            a.@in(al, dx);
            a.mov(sil, al);                  // SIL = RBR: the host's byte
            a.mov(dx, GuestImages.Com1Lsr);
            a.@in(al, dx);
            a.mov(dil, al);                  // DIL = LSR after the read
            a.cli();
            a.hlt();
        });
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        var r = Registers(vcpu);
        Assert.Equal(0x5AUL, r.Gprs[3] & 0xFF);
        Assert.Equal(0x61UL, r.Gprs[1] & 0xFF); // THRE | TEMT | DR
        Assert.Equal((ulong)'A', r.Gprs[6] & 0xFF);
        Assert.Equal(0x60UL, r.Gprs[7] & 0xFF); // DR cleared by reading RBR
    }

    [Fact]
    public void UnassignedPortsReadAllOnes()
    {
        var vcpu = StartVcpu(a =>
        {
            a.mov(ebx, 0);
            a.@in(al, 0x80);
            a.mov(bl, al);
            a.mov(dx, 0xCFC);
            a.@in(eax, dx);
            a.mov(ecx, eax);
            a.@out(0x80, al); // ignored
            a.cli();
            a.hlt();
        });
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        var r = Registers(vcpu);
        Assert.Equal(0xFFUL, r.Gprs[3]);
        Assert.Equal(0xFFFF_FFFFUL, r.Gprs[1]);
        vcpu.Tell(VcpuProtocol.GetCounters.Instance);
        var c = ExpectMsg<VcpuProtocol.Counters>(Wait);
        Assert.Equal(2, c.UnassignedPortReads);
        Assert.Equal(1, c.UnassignedPortWrites);
        Assert.Equal(r.InstructionCount, c.Instructions);
    }

    [Fact]
    public void SuspendStopsExecutionAndResumeContinuesIt()
    {
        var vcpu = StartVcpu(a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.inc(rax);
            a.jmp(loop);
        });
        vcpu.Tell(new LifecycleProtocol.Suspend("test"));
        ExpectMsg<LifecycleProtocol.Suspended>(Wait);
        var r1 = Registers(vcpu);
        Thread.Sleep(100);
        var r2 = Registers(vcpu);
        Assert.True(r1.InstructionCount > 0);
        Assert.Equal(r1.InstructionCount, r2.InstructionCount);
        Assert.Equal(r1.Rax, r2.Rax);

        vcpu.Tell(LifecycleProtocol.Resume.Instance);
        ExpectMsg<LifecycleProtocol.Resumed>(Wait);
        AwaitCondition(() => Registers(vcpu).InstructionCount > r2.InstructionCount + 1000, Wait, TimeSpan.FromMilliseconds(20));
        Assert.True(Registers(vcpu).Rax > r2.Rax);

        vcpu.Tell(VcpuProtocol.Stop.Instance);
        ExpectMsg<VcpuProtocol.Stopped>(Wait);
    }

    [Fact]
    public void SetRegisterBetweenRunsChangesWhatTheGuestComputes()
    {
        // The guest spins until RBX becomes non-zero, then prints the low byte of RBX and halts.
        var vcpu = StartVcpu(a =>
        {
            var spin = a.CreateLabel();
            a.Label(ref spin);
            a.test(rbx, rbx);
            a.jz(spin);
            a.mov(dx, GuestImages.Com1);
            a.mov(al, bl);
            a.@out(dx, al);
            a.cli();
            a.hlt();
        });
        vcpu.Tell(new LifecycleProtocol.Suspend("set a register"));
        ExpectMsg<LifecycleProtocol.Suspended>(Wait);
        vcpu.Tell(new VcpuProtocol.SetRegister("rbx", 'Z'));
        Assert.Equal(new VcpuProtocol.RegisterSet(0, "rbx", 'Z'), ExpectMsg<VcpuProtocol.RegisterSet>(Wait));
        Assert.Equal((ulong)'Z', Registers(vcpu).Gprs[3]);
        vcpu.Tell(new VcpuProtocol.SetRegister("xmm99", 1));
        Assert.Contains("unknown register 'xmm99'", ExpectMsg<LifecycleProtocol.NotAllowed>(Wait).Reason);

        vcpu.Tell(LifecycleProtocol.Resume.Instance);
        ExpectMsg<LifecycleProtocol.Resumed>(Wait);
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        AwaitCondition(() => Encoding.ASCII.GetString(_console.ToArray()) == "Z", Wait);
    }

    [Fact]
    public void HltWithInterruptsEnabledIsNotTheEnd()
    {
        var vcpu = StartVcpu(a =>
        {
            a.sti();
            a.hlt();
        });
        // The halted thread still serves commands; it reports nothing, since an interrupt may wake it.
        AwaitCondition(() => Registers(vcpu).Halted, Wait, TimeSpan.FromMilliseconds(20));
        _parent.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Watch(vcpu);
        Sys.Stop(vcpu);
        ExpectTerminated(vcpu, Wait);
    }

    /// <summary>An interrupt source that tests make pending by hand (the LAPIC's role).</summary>
    private sealed class ManualInterrupts : Kernel.Cpu.IInterruptSource
    {
        private int _vector = -1;
        public void Raise(int vector) => Volatile.Write(ref _vector, vector);
        public bool HasPendingInterrupt => Volatile.Read(ref _vector) >= 0;
        public int AcknowledgeInterrupt() => Interlocked.Exchange(ref _vector, -1);
    }

    [Fact]
    public void AKickWakesAHaltedVcpuToTakeAnInterrupt()
    {
        // Real mode: IVT[0x20] points at a handler at 0000:7D00 that sets BL and halts with IF=0.
        const ushort handler = 0x7D00;
        _memory.Write(0x7C00, GuestImages.Assemble(16, 0x7C00, a =>
        {
            a.mov(__word_ptr[0x20 * 4], handler);
            a.mov(__word_ptr[0x20 * 4 + 2], 0);
            a.sti();
            a.hlt();
            a.hlt();
        }));
        _memory.Write(handler, GuestImages.Assemble(16, handler, a =>
        {
            a.mov(bl, 0x42);
            a.cli();
            a.hlt();
        }));
        var interrupts = new ManualInterrupts();
        var vcpu = Sys.ActorOf(VcpuActor.Props(new VcpuOptions(0, _memory, IoBus<IActorRef>.Empty,
            cpu => CpuSetup.EnterRealMode(cpu, 0, 0x7C00), ReportTo: _parent, Interrupts: interrupts)));
        vcpu.Tell(VcpuProtocol.Start.Instance);
        ExpectMsg<VcpuProtocol.Started>(Wait);
        AwaitCondition(() => Registers(vcpu).Halted, Wait, TimeSpan.FromMilliseconds(20));
        // The thread answers GetRegisters before it runs (and halts) again: give it time to be back in its
        // wait, or the interrupt raised next would be seen by that run, without a kick.
        Thread.Sleep(100);

        interrupts.Raise(0x20);
        _parent.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // pending, but nobody told the halted thread
        vcpu.Tell(VcpuProtocol.Kick.Instance);
        var halted = _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        Assert.Equal(0x42UL, Registers(vcpu).Gprs[3] & 0xFF);
        Assert.InRange(halted.Rip, handler, handler + 8UL);
    }

    [Fact]
    public void TripleFaultIsReportedAsShutdown()
    {
        // No IDT (limit 0): #UD cannot be delivered, nor the #GP and #DF that follow.
        StartVcpu(a => a.ud2());
        var m = _parent.ExpectMsg<VcpuProtocol.ShutDown>(Wait);
        Assert.Equal(0, m.VcpuId);
    }

    [Fact]
    public void ADeviceThatNeverAnswersFailsTheVcpuWithAClearError()
    {
        var silent = CreateTestProbe("silent-device");
        StartVcpu(a =>
        {
            a.mov(dx, GuestImages.Com1Lsr);
            a.@in(al, dx);
            a.hlt();
        }, IoBus<IActorRef>.Empty.AddPio(GuestImages.Com1, 8, silent), TimeSpan.FromMilliseconds(300));
        silent.ExpectMsg<PioRead>(r => r.Offset == 5);
        var failed = _parent.ExpectMsg<VcpuProtocol.Failed>(Wait);
        Assert.Contains("port 0x3fd", failed.Error);
        Assert.Contains("silent-device", failed.Error);
    }

    [Fact]
    public void StoppingTheActorEndsARunThreadThatWaitsOnADevice()
    {
        var silent = CreateTestProbe();
        var vcpu = StartVcpu(a =>
        {
            a.mov(dx, GuestImages.Com1Lsr);
            a.@in(al, dx);
            a.hlt();
        }, IoBus<IActorRef>.Empty.AddPio(GuestImages.Com1, 8, silent), TimeSpan.FromMinutes(5));
        silent.ExpectMsg<PioRead>(Wait);
        Watch(vcpu);
        Sys.Stop(vcpu);
        ExpectTerminated(vcpu, Wait);
        _parent.ExpectNoMsg(TimeSpan.FromMilliseconds(200)); // a stop is not a failure
    }

    [Fact]
    public void NothingRunsBeforeStart()
    {
        var vcpu = StartVcpu(a => a.hlt(), start: false);
        var r = Registers(vcpu);
        Assert.Equal(0, r.InstructionCount);
        Assert.Equal(Load, r.Rip);
        Assert.Equal(64, r.Bitness);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing); // stops the actors, and so the run threads, first
        if (disposing) _memory.Dispose();
    }
}
