using Actorvisor.Actors.Devices.IsaIrq;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Host.Vm;
using Actorvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>The VM supervisor's wiring and its mapping of vCPU reports to exit codes.</summary>
public class VmSupervisorTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private readonly List<string> _files = new();

    private string Kernel(byte[] image)
    {
        var path = GuestImages.WriteTemp(image, ".img");
        _files.Add(path);
        return path;
    }

    private static byte[] Elf64(Action<Iced.Intel.Assembler> program)
    {
        var code = GuestImages.Assemble(64, 0x200000, program);
        return GuestImages.Elf64(0x200000, new ElfSegmentSpec(0x200000, 0x200000, code, (ulong)code.Length));
    }

    [Fact]
    public void UartInterruptIsRecordedOnGsi4()
    {
        // The guest opens the PC's OUT2 gate and enables the THR-empty interrupt, then spins.
        var kernel = Kernel(Elf64(a =>
        {
            var spin = a.CreateLabel();
            a.mov(dx, GuestImages.Com1 + 4); // MCR
            a.mov(al, 0x08);                 // OUT2
            a.@out(dx, al);
            a.mov(dx, GuestImages.Com1 + 1); // IER
            a.mov(al, 0x02);                 // ETBEI: THR is empty, so INTR rises at once
            a.@out(dx, al);
            a.Label(ref spin);
            a.pause();
            a.jmp(spin);
        }));
        var vm = Sys.ActorOf(VmSupervisor.Props(new VmConfig("irq", 16 << 20, kernel, new MemoryStream()), TestActor), "vm-irq");
        var irq = Sys.ActorSelection("/user/vm-irq/irq-lines");
        // Short asks inside the retry loop: one sent before the supervisor has created irq-lines goes to dead
        // letters, and a long ask would spend the whole retry window waiting for it.
        AwaitAssert(() =>
        {
            var lines = irq.Ask<IrqLinesActor.Lines>(IrqLinesActor.GetLines.Instance, TimeSpan.FromSeconds(1)).GetAwaiter().GetResult();
            Assert.True(lines.ByGsi.TryGetValue(VmSupervisor.Com1Gsi, out var gsi4) && gsi4.Level);
            Assert.Equal(1, gsi4.Raised);
        }, Wait, TimeSpan.FromMilliseconds(50));
        // Stopped from outside, the VM still reports (an error: nothing inside it ended the run).
        Watch(vm);
        Sys.Stop(vm);
        Assert.Equal(VmExitCode.Error, ExpectMsg<VmProtocol.VmExited>(Wait).Code);
        ExpectTerminated(vm, Wait);
    }

    [Fact]
    public void UartInterruptRunsTheGuestHandlerThroughTheVmsIoApicAndLapic()
    {
        const ulong handler = 0x201000, idt = 0x210000, idtr = 0x220000, counter = 0x220100;
        var main = GuestImages.Assemble(64, 0x200000, a =>
        {
            GuestImages.RouteIoApicPin64(a, pin: 4, 0x40, handler, idt, idtr); // COM1's IRQ 4 to vector 40h
            a.mov(dx, GuestImages.Com1 + 4);              // MCR: OUT2
            a.mov(al, 0x08);
            a.@out(dx, al);
            a.mov(dx, GuestImages.Com1 + 1);              // IER: THR empty
            a.mov(al, 0x02);
            a.@out(dx, al);
            var wait = a.CreateLabel();
            a.sti();
            a.Label(ref wait);
            a.hlt();
            a.cmp(__dword_ptr[counter], 0);
            a.je(wait);
            a.cli();
            a.mov(dx, GuestImages.Com1 + 1);              // IER off, then say so on the console
            a.mov(al, 0);
            a.@out(dx, al);
            a.mov(dx, GuestImages.Com1);
            foreach (var c in "IRQ\n")
            {
                a.mov(al, (byte)c);
                a.@out(dx, al);
            }
            a.hlt();
        });
        var isr = GuestImages.UartThreIsr64(handler, counter);
        var kernel = Kernel(GuestImages.Elf64(0x200000,
            new ElfSegmentSpec(0x200000, 0x200000, main, (ulong)main.Length),
            new ElfSegmentSpec(handler, handler, isr, (ulong)isr.Length)));
        var console = new MemoryStream();
        Sys.ActorOf(VmSupervisor.Props(new VmConfig("isr", 16 << 20, kernel, console), TestActor));
        var exited = ExpectMsg<VmProtocol.VmExited>(Wait);
        Assert.Equal(VmExitCode.Halted, exited.Code);
        Assert.Equal("IRQ\n", System.Text.Encoding.ASCII.GetString(console.ToArray()));
    }

    [Fact]
    public void EveryVcpuHaltedWithInterruptsOffEndsTheVmWithStatus2AfterTheConsoleDrains()
    {
        var console = new MemoryStream();
        var kernel = Kernel(GuestImages.HelloElf64("drained"));
        var vm = Sys.ActorOf(VmSupervisor.Props(new VmConfig("halt", 16 << 20, kernel, console), TestActor));
        Watch(vm);
        var exited = ExpectMsg<VmProtocol.VmExited>(Wait);
        Assert.Equal(VmExitCode.Halted, exited.Code);
        Assert.Null(exited.Message);
        Assert.Equal("drained", System.Text.Encoding.ASCII.GetString(console.ToArray()));
        ExpectTerminated(vm, Wait);
    }

    [Fact]
    public void AnUnloadableKernelEndsTheVmWithStatus4AndTheLoadersReason()
    {
        var kernel = Kernel(GuestImages.Elf64(0x2000, new ElfSegmentSpec(0x2000, 0x2000, [0xF4], 1)));
        Sys.ActorOf(VmSupervisor.Props(new VmConfig("bad", 16 << 20, kernel, new MemoryStream()), TestActor));
        var exited = ExpectMsg<VmProtocol.VmExited>(Wait);
        Assert.Equal(VmExitCode.Error, exited.Code);
        Assert.Contains("setup area", exited.Message);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        foreach (var f in _files) File.Delete(f);
    }
}
