using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Cpu;
using Actorvisor.Actors.Cpu.Lapic;
using Actorvisor.Actors.Devices.IoApic;
using Actorvisor.Actors.Devices.IsaIrq;
using Actorvisor.Actors.Devices.Pic;
using Actorvisor.Actors.Devices.Uart;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Bus;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Cpu;

/// <summary>
/// End to end: guest programs that set up the interrupt controllers, let the real UART actor raise IRQ 4 (or
/// the LAPIC timer fire), and take the interrupt in their handler through the IDT or IVT. The whole fabric
/// runs as actors: UART → ISA router → 8259 / IOAPIC → APIC bus → LAPIC → vCPU thread.
/// </summary>
public class InterruptGuestTests : TestKit, IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private const ulong Main64 = 0x200000, Handler64 = 0x201000, Idt = 0x10000, Counter = 0x300000, Saved = 0x300008;
    private const ushort Main16 = 0x7C00, Handler16 = 0x7E00, Counter16 = 0x600, Saved16 = 0x602;
    private const ulong LapicBase = 0xFEE0_0000, IoApicBase = 0xFEC0_0000;

    private readonly GuestMemory _memory = new(16 << 20);
    private readonly TestProbe _parent;
    private readonly VcpuLapic _lapic;
    private readonly IoBus<IActorRef> _bus;

    public InterruptGuestTests()
    {
        _parent = CreateTestProbe("parent");
        var apicBus = Sys.ActorOf(ApicBusActor.Props(), "apic-bus");
        var ioapic = Sys.ActorOf(IoApicActor.Props(apicBus), "ioapic");
        _lapic = new VcpuLapic(0, TimeProvider.System, CpuModel.Default.BusHz, apicBus, ioapic, pic: null);
        var lapicActor = Sys.ActorOf(LapicActor.Props(_lapic), "lapic-0");
        apicBus.Tell(new ApicBusActor.Attach(_lapic, lapicActor));
        var pic = Sys.ActorOf(PicActor.Props(lapicActor), "pic");
        _lapic.ConnectPic(pic);
        var isa = new IsaIrqRouter(Sys, pic, ioapic, apicBus, Sys.ActorOf(IrqLinesActor.Props(), "irq-lines"));
        var uart = Sys.ActorOf(UartActor.Props(isa, 4, new MemoryStream()), "uart-0");
        _bus = IoBus<IActorRef>.Empty
            .AddPio(PicRegisters.MasterPort, 2, pic).AddPio(PicRegisters.SlavePort, 2, pic).AddPio(PicRegisters.ElcrPort, 2, pic)
            .AddMmio(IoApicBase, 0x1000, ioapic)
            .AddPio(GuestImages.Com1, 8, uart);
    }

    private void Run(Action<SoftwareCpu> boot)
    {
        var vcpu = Sys.ActorOf(VcpuActor.Props(new VcpuOptions(0, _memory, _bus, boot, ReportTo: _parent, Lapic: _lapic)), "cpu-0");
        vcpu.Tell(VcpuProtocol.Start.Instance);
        ExpectMsg<VcpuProtocol.Started>(Wait);
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
    }

    /// <summary>A 64-bit interrupt gate (SDM Vol. 3A, Figure 6-8): present, DPL 0, type 1110b, code selector 08h.</summary>
    private void WriteGate64(int vector, ulong handler)
    {
        var e = Idt + (ulong)vector * 16;
        _memory.WriteUInt64(e, (handler & 0xFFFF) | ((ulong)CpuSetup.Code64 << 16) | (0x8EUL << 40) | ((handler >> 16 & 0xFFFF) << 48));
        _memory.WriteUInt64(e + 8, handler >> 32);
    }

    private void Boot64(SoftwareCpu cpu)
    {
        CpuSetup.EnterLongMode(cpu, Main64, 0x9F000);
        cpu.Idtr = new DescriptorTable { Base = Idt, Limit = 0xFFF };
    }

    /// <summary>Handler: read IIR (which clears the THRE interrupt), count, EOI at the LAPIC, IRETQ.</summary>
    private static void UartHandler64(Assembler a)
    {
        a.push(rax);
        a.push(rdx);
        a.mov(dx, GuestImages.Com1 + 2);     // IIR
        a.@in(al, dx);
        a.mov(__byte_ptr[Saved], al);
        a.inc(__dword_ptr[Counter]);
        a.mov(rax, LapicBase);
        a.mov(__dword_ptr[rax + 0xB0], 0);   // EOI
        a.pop(rdx);
        a.pop(rax);
        a.iretq();
    }

    /// <summary>STI; HLT until the handler has counted <paramref name="count"/>, then CLI; HLT (the VM's "halted").</summary>
    private static void WaitForCount(Assembler a, int count)
    {
        var wait = a.CreateLabel();
        a.sti();
        a.Label(ref wait);
        a.hlt();
        a.cmp(__dword_ptr[Counter], count);
        a.jb(wait);
        a.cli();
        a.hlt();
    }

    [Fact]
    public void UartInterruptReachesA64BitHandlerThroughIoApicAndLapic()
    {
        _memory.Write(Handler64, GuestImages.Assemble(64, Handler64, UartHandler64));
        WriteGate64(0x40, Handler64);
        _memory.Write(Main64, GuestImages.Assemble(64, Main64, a =>
        {
            a.mov(al, 0xFF);                   // mask both 8259s, as an OS that uses the IOAPIC does
            a.@out(0x21, al);
            a.@out(0xA1, al);
            a.mov(rbx, LapicBase);
            a.mov(__dword_ptr[rbx + 0xF0], 0x1FF); // SVR: software enable, spurious vector FFh
            a.mov(rcx, IoApicBase);
            a.mov(__dword_ptr[rcx], 0x19);     // IOREGSEL: redirection entry 4, high dword
            a.mov(__dword_ptr[rcx + 0x10], 0); //   destination APIC ID 0
            a.mov(__dword_ptr[rcx], 0x18);     // entry 4, low dword
            a.mov(__dword_ptr[rcx + 0x10], 0x40); // vector 40h, fixed, physical, edge, active high, unmasked
            a.mov(dx, GuestImages.Com1 + 4);   // MCR: OUT2 gates the IRQ line on a PC
            a.mov(al, 0x08);
            a.@out(dx, al);
            a.mov(dx, GuestImages.Com1 + 1);   // IER: THR-empty interrupt; THR is empty, so IRQ 4 rises now
            a.mov(al, 0x02);
            a.@out(dx, al);
            WaitForCount(a, 1);
        }));
        Run(Boot64);
        Assert.Equal(1u, _memory.ReadUInt32(Counter));
        Assert.Equal(0x02, _memory.ReadByte(Saved)); // IIR: THR empty was the interrupt
        Assert.False(_lapic.Model.IsrBit(0x40));     // the handler's EOI ended it
        Assert.False(_lapic.Model.IrrBit(0x40));
    }

    /// <summary>
    /// The UART pin programmed level-triggered: the first interrupt sets Remote IRR; only the EOI broadcast
    /// (the LAPIC's TMR bit set) clears it, so the second interrupt, raised by a THR write, reaches the guest
    /// only if the broadcast worked.
    /// </summary>
    [Fact]
    public void LevelTriggeredIoApicPinNeedsTheLapicEoiBroadcastForTheNextInterrupt()
    {
        _memory.Write(Handler64, GuestImages.Assemble(64, Handler64, UartHandler64));
        WriteGate64(0x41, Handler64);
        _memory.Write(Main64, GuestImages.Assemble(64, Main64, a =>
        {
            a.mov(al, 0xFF);
            a.@out(0x21, al);
            a.@out(0xA1, al);
            a.mov(rbx, LapicBase);
            a.mov(__dword_ptr[rbx + 0xF0], 0x1FF);   // SVR: enable
            a.mov(rcx, IoApicBase);
            a.mov(__dword_ptr[rcx], 0x18);           // entry 4 low
            a.mov(__dword_ptr[rcx + 0x10], 0x8041);  // vector 41h, fixed, physical dest 0, level-triggered
            a.mov(dx, GuestImages.Com1 + 4);
            a.mov(al, 0x08);                         // MCR: OUT2
            a.@out(dx, al);
            a.mov(dx, GuestImages.Com1 + 1);
            a.mov(al, 0x02);                         // IER: THR empty
            a.@out(dx, al);
            var first = a.CreateLabel();
            a.sti();
            a.Label(ref first);
            a.hlt();
            a.cmp(__dword_ptr[Counter], 1);
            a.jb(first);
            a.cli();
            a.mov(__dword_ptr[rcx], 0x18);           // read entry 4 back: Remote IRR must be clear after the EOI
            a.mov(esi, __dword_ptr[rcx + 0x10]);
            a.mov(dx, GuestImages.Com1);
            a.mov(al, (byte)'x');                    // a THR write makes THR-empty due again: IRQ 4 rises
            a.@out(dx, al);
            var second = a.CreateLabel();
            a.sti();
            a.Label(ref second);
            a.hlt();
            a.cmp(__dword_ptr[Counter], 2);
            a.jb(second);
            a.cli();
            a.hlt();
        }));
        var vcpu = Sys.ActorOf(VcpuActor.Props(new VcpuOptions(0, _memory, _bus, Boot64, ReportTo: _parent, Lapic: _lapic)), "cpu-0");
        vcpu.Tell(VcpuProtocol.Start.Instance);
        ExpectMsg<VcpuProtocol.Started>(Wait);
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        vcpu.Tell(VcpuProtocol.GetRegisters.Instance);
        var r = ExpectMsg<VcpuProtocol.Registers>(Wait).State;
        Assert.Equal(2u, _memory.ReadUInt32(Counter));
        Assert.Equal(0x8041UL, r.Gprs[6]);           // Remote IRR (bit 14) clear, entry as programmed
    }

    [Fact]
    public void LapicTimerFiresPeriodicallyInA64BitGuest()
    {
        _memory.Write(Handler64, GuestImages.Assemble(64, Handler64, a =>
        {
            a.push(rax);
            a.inc(__dword_ptr[Counter]);
            a.mov(rax, LapicBase);
            a.mov(__dword_ptr[rax + 0xB0], 0); // EOI
            a.pop(rax);
            a.iretq();
        }));
        WriteGate64(0x30, Handler64);
        _memory.Write(Main64, GuestImages.Assemble(64, Main64, a =>
        {
            a.mov(rbx, LapicBase);
            a.mov(__dword_ptr[rbx + 0xF0], 0x1FF);     // SVR: enable
            a.mov(__dword_ptr[rbx + 0x3E0], 0x0B);     // divide by 1
            a.mov(__dword_ptr[rbx + 0x320], 0x20030);  // LVT timer: periodic, vector 30h
            a.mov(__dword_ptr[rbx + 0x380], 100_000);  // 1 ms at the 100 MHz bus clock
            WaitForCount(a, 5);
            a.mov(__dword_ptr[rbx + 0x380], 0);        // unreachable after HLT; keeps the shape obvious
        }));
        var started = DateTime.UtcNow;
        Run(Boot64);
        // The timer keeps running: on a loaded host more periods can end between the guest's last compare and
        // its CLI (a late host timer catches up), so the count is at least five.
        Assert.True(_memory.ReadUInt32(Counter) >= 5, $"only {_memory.ReadUInt32(Counter)} timer interrupts");
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(4), "five 1 ms periods take at least 4 ms");
        Assert.True(_lapic.Model.TimerFirings >= 5);
    }

    [Fact]
    public void Cr8AndTprAreOneRegisterAndHoldBackASelfIpi()
    {
        _memory.Write(Handler64, GuestImages.Assemble(64, Handler64, a =>
        {
            a.push(rax);
            a.inc(__dword_ptr[Counter]);
            a.mov(rax, LapicBase);
            a.mov(__dword_ptr[rax + 0xB0], 0);
            a.pop(rax);
            a.iretq();
        }));
        WriteGate64(0x45, Handler64);
        _memory.Write(Main64, GuestImages.Assemble(64, Main64, a =>
        {
            a.mov(rbx, LapicBase);
            a.mov(__dword_ptr[rbx + 0xF0], 0x1FF);     // SVR: enable
            a.mov(eax, 5);
            a.mov(cr8, rax);                           // CR8 = 5: TPR = 50h
            a.mov(esi, __dword_ptr[rbx + 0x80]);       // ESI = TPR as the LAPIC sees it
            a.mov(__dword_ptr[rbx + 0x300], 0x40045);  // ICR: self-IPI, fixed, vector 45h
            a.sti();
            a.nop();
            a.nop();
            a.mov(edi, __dword_ptr[Counter]);          // EDI = 0: class 4 is held back by TPR class 5
            a.xor(eax, eax);
            a.mov(cr8, rax);                           // lowered: the IPI is taken at the next boundary
            var wait = a.CreateLabel();
            a.Label(ref wait);                         // spin, not HLT: the interrupt may already be taken
            a.pause();
            a.cmp(__dword_ptr[Counter], 1);
            a.jb(wait);
            a.cli();
            a.mov(__dword_ptr[rbx + 0x80], 0x70);      // TPR written through the APIC page
            a.mov(rax, cr8);
            a.mov(r8, rax);                            // R8 = 7
            a.hlt();
        }));
        var vcpu = Sys.ActorOf(VcpuActor.Props(new VcpuOptions(0, _memory, _bus, Boot64, ReportTo: _parent, Lapic: _lapic)), "cpu-0");
        vcpu.Tell(VcpuProtocol.Start.Instance);
        ExpectMsg<VcpuProtocol.Started>(Wait);
        _parent.ExpectMsg<VcpuProtocol.HaltedForGood>(Wait);
        vcpu.Tell(VcpuProtocol.GetRegisters.Instance);
        var r = ExpectMsg<VcpuProtocol.Registers>(Wait).State;
        Assert.Equal(0x50UL, r.Gprs[6]);
        Assert.Equal(0UL, r.Gprs[7]);
        Assert.Equal(7UL, r.Gprs[8]);
        Assert.Equal(1u, _memory.ReadUInt32(Counter));
    }

    /// <summary>
    /// Real mode, 8259 programmed with the PC's ICW sequence, IRQ 4 at vector 24h through the IVT. With the
    /// LAPIC in virtual wire mode the INTR goes through LINT0 as ExtINT; with IA32_APIC_BASE.EN cleared it is
    /// the CPU's INTR pin directly. Either way the 8259 INTA cycle supplies the vector.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UartInterruptReachesARealModeHandlerThroughThe8259(bool disableLapic)
    {
        _lapic.EnterVirtualWireMode(); // what a BIOS leaves behind
        _memory.Write(Handler16, GuestImages.Assemble(16, Handler16, a =>
        {
            a.push(ax);
            a.push(dx);
            a.mov(dx, GuestImages.Com1 + 2);   // IIR
            a.@in(al, dx);
            a.mov(__byte_ptr[Saved16], al);
            a.inc(__byte_ptr[Counter16]);
            a.mov(al, 0x20);                   // OCW2: non-specific EOI
            a.@out(0x20, al);
            a.pop(dx);
            a.pop(ax);
            a.iret();
        }));
        _memory.Write(Main16, GuestImages.Assemble(16, Main16, a =>
        {
            a.cli();
            a.xor(ax, ax);
            a.mov(ds, ax);
            if (disableLapic)
            {
                a.mov(ecx, 0x1B);              // IA32_APIC_BASE
                a.rdmsr();
                a.and(eax, ~0x800);            // EN = 0: the LAPIC is off the bus, LINT0 is INTR
                a.wrmsr();
            }
            a.mov(__word_ptr[0x24 * 4], Handler16); // IVT[24h] = 0000:7E00
            a.mov(__word_ptr[0x24 * 4 + 2], 0);
            a.mov(al, 0x11); a.@out(0x20, al); // ICW1: edge, cascade, ICW4 needed
            a.mov(al, 0x20); a.@out(0x21, al); // ICW2: vectors 20h-27h
            a.mov(al, 0x04); a.@out(0x21, al); // ICW3: slave on IR2
            a.mov(al, 0x01); a.@out(0x21, al); // ICW4: 8086 mode
            a.mov(al, 0x11); a.@out(0xA0, al); // slave ICW1
            a.mov(al, 0x28); a.@out(0xA1, al); // ICW2: vectors 28h-2Fh
            a.mov(al, 0x02); a.@out(0xA1, al); // ICW3: slave ID 2
            a.mov(al, 0x01); a.@out(0xA1, al); // ICW4
            a.mov(al, 0xEF); a.@out(0x21, al); // OCW1: only IRQ 4 unmasked
            a.mov(al, 0xFF); a.@out(0xA1, al);
            a.mov(dx, GuestImages.Com1 + 4);   // MCR: OUT2
            a.mov(al, 0x08);
            a.@out(dx, al);
            a.mov(dx, GuestImages.Com1 + 1);   // IER: THR-empty interrupt
            a.mov(al, 0x02);
            a.@out(dx, al);
            var wait = a.CreateLabel();
            a.sti();
            a.Label(ref wait);
            a.hlt();
            a.cmp(__byte_ptr[Counter16], 0);
            a.je(wait);
            a.cli();
            a.hlt();
        }));
        Run(cpu => CpuSetup.EnterRealMode(cpu, 0, Main16));
        Assert.Equal(1, _memory.ReadByte(Counter16));
        Assert.Equal(0x02, _memory.ReadByte(Saved16));
        Assert.Equal(1, _lapic.ExtIntAcknowledges);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) _memory.Dispose();
    }
}
