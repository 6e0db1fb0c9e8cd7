using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Cpu;
using Actorvisor.Actors.Cpu.Lapic;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Actorvisor.Kernel.Messages.InterruptProtocol;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Cpu.Lapic;

/// <summary>
/// INIT and STARTUP IPIs through the actors: an ICR write on one vCPU → APIC bus → the target's LAPIC mailbox → its
/// run thread, which applies INIT (wait-for-SIPI) and SIPI (real mode at VV00:0000), SDM Vol. 3A, 10.4.4.
/// </summary>
public class InitSipiTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private const ulong LapicBase = 0xFEE0_0000, Bsp = 0x200000;
    private readonly GuestMemory _memory = new(16 << 20);
    private readonly TestProbe _parent;
    private readonly IActorRef _apicBus;

    public InitSipiTests()
    {
        _parent = CreateTestProbe("parent");
        _apicBus = Sys.ActorOf(ApicBusActor.Props(), "apic-bus");
    }

    /// <summary>A vCPU with its LAPIC (APIC ID <paramref name="apicId"/>) on the bus; started.</summary>
    private (IActorRef Vcpu, IActorRef Mailbox, VcpuLapic Lapic) Vcpu(int id, byte apicId, Action<SoftwareCpu> boot)
    {
        var lapic = new VcpuLapic(id, TimeProvider.System, CpuModel.Default.BusHz, _apicBus, _parent.Ref, pic: null, apicId);
        var mailbox = Sys.ActorOf(LapicActor.Props(lapic), $"lapic-{id}");
        _apicBus.Tell(new ApicBusActor.Attach(lapic, mailbox));
        var vcpu = Sys.ActorOf(VcpuActor.Props(new VcpuOptions(id, _memory, IoBus<IActorRef>.Empty, boot, ReportTo: _parent,
            Lapic: lapic)), $"cpu-{id}");
        vcpu.Tell(VcpuProtocol.Start.Instance);
        ExpectMsg<VcpuProtocol.Started>(Wait);
        return (vcpu, mailbox, lapic);
    }

    private CpuRegisters Registers(IActorRef vcpu)
    {
        vcpu.Tell(VcpuProtocol.GetRegisters.Instance);
        return ExpectMsg<VcpuProtocol.Registers>(Wait).State;
    }

    private static byte[] Real(Action<Assembler> program) => GuestImages.Assemble(16, 0, program);

    [Fact]
    public void IcrInitThenSipiToAnApicIdStartsThatVcpuAtTheVectorsPage()
    {
        const ulong Cs = 0x500, Count = 0x504;
        // The AP's trampoline at 9A000h: DS = 0 after INIT; record CS, count itself in, stop.
        _memory.Write(0x9A000, Real(a =>
        {
            a.mov(ax, cs);
            a.mov(__word_ptr[Cs], ax);
            a.@lock.inc(__dword_ptr[Count]);
            a.cli();
            a.hlt();
        }));
        var ap = Vcpu(1, apicId: 5, cpu => cpu.EnterWaitForSipi());
        Assert.Equal(1, _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait).VcpuId); // waiting for SIPI runs nothing
        Assert.True(Registers(ap.Vcpu).WaitingForSipi);

        // The BSP: INIT (assert) then two SIPIs, vector 9Ah, physical destination APIC ID 5; then waits for the AP.
        _memory.Write(Bsp, GuestImages.Assemble(64, Bsp, a =>
        {
            var wait = a.CreateLabel();
            var done = a.CreateLabel();
            a.mov(rbx, LapicBase);
            a.mov(__dword_ptr[rbx + 0x310], 5u << 24);     // ICR high: destination 5
            a.mov(__dword_ptr[rbx + 0x300], 0x0000_C500);  // INIT, level, assert
            a.mov(__dword_ptr[rbx + 0x300], 0x0000_8500);  // INIT de-assert (ignored)
            a.mov(__dword_ptr[rbx + 0x300], 0x0000_469A);  // STARTUP 9Ah
            a.mov(__dword_ptr[rbx + 0x300], 0x0000_469A);  // the second SIPI of the protocol
            a.mov(ecx, 50_000_000);
            a.Label(ref wait);
            a.cmp(__dword_ptr[Count], 1);
            a.je(done);
            a.pause();
            a.dec(ecx);
            a.jnz(wait);
            a.Label(ref done);
            a.cli();
            a.hlt();
        }));
        var bsp = Vcpu(0, apicId: 0, cpu => CpuSetup.EnterLongMode(cpu, Bsp, 0x9F000));

        var reports = new List<object>();
        // The AP wakes, then both halt: the BSP after seeing the count, the AP after counting.
        _parent.FishForMessage(m =>
        {
            reports.Add(m);
            return reports.OfType<VcpuProtocol.HaltedForGood>().Select(h => h.VcpuId).Distinct().Count() == 2;
        }, Wait);
        Assert.Contains(reports, r => r is VcpuProtocol.Woke { VcpuId: 1 });
        Assert.Equal(1u, _memory.ReadUInt32(Count));
        Assert.Equal(0x9A00, _memory.ReadUInt16(Cs));
        var r = Registers(ap.Vcpu);
        Assert.False(r.WaitingForSipi);
        Assert.Equal((ushort)0x9A00, r.Cs);
        Assert.Equal(16, r.Bitness);
        Assert.Equal(1, ap.Lapic.StartUps);
        Assert.Equal(1, ap.Lapic.IgnoredStartUps);  // the second SIPI found it running
        Assert.Equal(1, ap.Lapic.Inits);             // the de-assert did nothing
        Assert.Equal(64, Registers(bsp.Vcpu).Bitness);     // the BSP, sender of the IPIs, is untouched by them
    }

    [Fact]
    public void InitStopsARunningVcpuUntilTheNextSipi()
    {
        const ulong Spins = 0x600, Second = 0x700;
        _memory.Write(0x10000, Real(a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.inc(__dword_ptr[Spins]);
            a.jmp(loop);
        }));
        _memory.Write(0x11000, Real(a =>
        {
            a.mov(__dword_ptr[Second], 0x600D);
            a.cli();
            a.hlt();
        }));
        var ap = Vcpu(1, apicId: 1, cpu => cpu.EnterWaitForSipi());
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        var to1 = ApicDestination.Physical(1);

        ap.Mailbox.Tell(new LapicDeliver(0x10, DeliveryMode.Startup, TriggerMode.Edge, to1));
        Assert.Equal(1, _parent.ExpectMsg<VcpuProtocol.Woke>(Wait).VcpuId);
        AwaitCondition(() => _memory.ReadUInt32(Spins) > 1000, Wait);

        ap.Mailbox.Tell(new LapicDeliver(0, DeliveryMode.Init, TriggerMode.Level, to1));
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait); // wait-for-SIPI again
        var r = Registers(ap.Vcpu);
        Assert.True(r.WaitingForSipi);
        Assert.Equal((ushort)0xF000, r.Cs);
        Assert.Equal(0xFFF0UL, r.Rip);
        Assert.Equal(0UL, r.Gprs[0]);
        var frozen = _memory.ReadUInt32(Spins);
        Thread.Sleep(50);
        Assert.Equal(frozen, _memory.ReadUInt32(Spins));    // nothing runs while it waits

        // An interrupt or NMI does not wake it; the next SIPI starts it at the new vector.
        ap.Mailbox.Tell(new LapicDeliver(2, DeliveryMode.Nmi, TriggerMode.Edge, to1));
        ap.Mailbox.Tell(new LapicDeliver(0x11, DeliveryMode.Startup, TriggerMode.Edge, to1));
        _parent.ExpectMsg<VcpuProtocol.Woke>(Wait);
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        Assert.Equal(0x600Du, _memory.ReadUInt32(Second));
        Assert.Equal(frozen, _memory.ReadUInt32(Spins));
        Assert.Equal((ushort)0x1100, Registers(ap.Vcpu).Cs);
    }
}
