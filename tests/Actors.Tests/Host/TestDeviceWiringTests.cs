using Actorvisor.Actors.Devices.IsaIrq;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Cpu;
using Actorvisor.Host.Vm;
using Actorvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>pc-testdev and the empty parts of the I/O space, wired by the VM supervisor, driven by a guest.</summary>
public class TestDeviceWiringTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private const ushort Unassigned = 0x1234;

    [Fact]
    public void GuestDrivesPcTestdevIrqLinesScratchIoMemAndFlushAndUnassignedPortsReadAllOnes()
    {
        var image = MultibootKernels.Elf(0x100000, g =>
        {
            var a = g.A;
            a.mov(dx, 0xE0);                 // scratch: a dword, then byte 2 alone
            a.mov(eax, 0x11223344);
            a.@out(dx, eax);
            a.mov(dx, 0xE2);
            a.mov(al, 0xAA);
            a.@out(dx, al);
            a.mov(dx, 0xE0);
            a.@in(eax, dx);
            g.Print("scratch=");
            g.Hex();
            a.mov(__dword_ptr[0xFF000010], 0xCAFEF00D); // the RAM-like MMIO window
            a.mov(eax, __dword_ptr[0xFF000010]);
            g.Print("\niomem=");
            g.Hex();
            a.mov(al, 1);                    // GSI 10 up; GSI 11 up and down
            a.mov(dx, 0x2000 + 10);
            a.@out(dx, al);
            a.mov(dx, 0x2000 + 11);
            a.@out(dx, al);
            a.mov(al, 0);
            a.@out(dx, al);
            a.mov(dx, Unassigned);           // nothing there: all ones, and the write vanishes
            a.@in(eax, dx);
            g.Print("\nunassigned=");
            g.Hex();
            a.@out(dx, eax);
            a.mov(dx, 0xE4);                 // flush the page this code runs from, and go on running
            a.mov(eax, 0x100000);
            a.@out(dx, eax);
            g.Print("\ndone\n");
            var spin = a.CreateLabel();
            a.Label(ref spin);
            a.pause();
            a.jmp(spin);
        });
        var kernel = GuestImages.WriteTemp(image, ".elf");
        try
        {
            var console = new MemoryStream();
            var config = new VmConfig("testdev", 16 << 20, kernel, console) { Devices = [new DeviceSpec.PcTestdev()] };
            var vm = Sys.ActorOf(VmSupervisor.Props(config, TestActor), "vm-testdev");
            var irq = Sys.ActorSelection("/user/vm-testdev/irq-lines");
            var cpu = Sys.ActorSelection("/user/vm-testdev/cpu-0");
            // Short asks: a selection asked before the supervisor has created its children goes to dead letters.
            var ask = TimeSpan.FromSeconds(1);
            AwaitAssert(() =>
            {
                var counters = cpu.Ask<VcpuProtocol.Counters>(VcpuProtocol.GetCounters.Instance, ask).GetAwaiter().GetResult();
                Assert.Equal(1, counters.UnassignedPortReads);
                Assert.Equal(1, counters.UnassignedPortWrites);
                var lines = irq.Ask<IrqLinesActor.Lines>(IrqLinesActor.GetLines.Instance, ask).GetAwaiter().GetResult().ByGsi;
                Assert.Equal((true, 1L), lines[10]);
                Assert.Equal((false, 1L), lines[11]);
            }, Wait, TimeSpan.FromMilliseconds(50));

            Watch(vm);
            Sys.Stop(vm);
            ExpectMsg<VmProtocol.VmExited>(Wait);
            ExpectTerminated(vm, Wait);
            Assert.Equal("scratch=11AA3344\niomem=CAFEF00D\nunassigned=FFFFFFFF\ndone\n",
                System.Text.Encoding.ASCII.GetString(console.ToArray()));
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
