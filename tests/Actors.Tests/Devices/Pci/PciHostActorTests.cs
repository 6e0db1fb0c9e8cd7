using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices.Pci;
using Actorvisor.Actors.Devices.Pci.Host;
using Actorvisor.Actors.Devices.Pci.Lpc;
using Actorvisor.Actors.Devices.Pirq;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Actors.Devices.Pci.PciRegisters;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Tests.Devices.Pci;

/// <summary>
/// The PCI host actor with function actors behind it, driven with the port and MMIO messages a vCPU sends:
/// configuration cycles through 0xCF8/0xCFC and ECAM, BARs reached at their current address only while decode is
/// on, a BAR moved at run time, port 0xCF9 handed to the reset control register, and PIRQ routes through the LPC.
/// </summary>
public class PciHostActorTests : TestKit
{
    private static readonly PciAddress Slot3 = new(3, 0);

    /// <summary>A function with a 4 KiB memory BAR 0 and a 32-port I/O BAR 2 that store what is written (a scratch device).</summary>
    private sealed class ScratchFunction : PciFunction
    {
        private readonly Dictionary<(int, ulong), ulong> _cells = new();
        public ScratchFunction() : base(new PciConfigSpace(0x1234, 0x0001, 0xFF_00_00))
        {
            Config.DefineBar(0, new PciBar(PciBarKind.Memory32, 0x1000), 0xC000_0000);
            Config.DefineBar(2, new PciBar(PciBarKind.Io, 0x20), 0x2000);
            Config.Write(Command, 2, CommandMemorySpace | CommandIoSpace);
        }
        public override ulong ReadBar(int bar, ulong offset, int size) => _cells.GetValueOrDefault((bar, offset), 0xAB00UL | (ulong)bar);
        public override void WriteBar(int bar, ulong offset, int size, ulong value) => _cells[(bar, offset)] = value;
    }

    private IActorRef Host(IActorRef? resetControl = null, IPciFunction? lpc = null)
    {
        var scratch = new ScratchFunction();
        var fabric = CreateTestProbe();
        var functions = new Dictionary<PciAddress, Props> { [Slot3] = PciFunctionActor.Props(Slot3, scratch, fabric) };
        var decodes = new Dictionary<PciAddress, IReadOnlyList<PciBarDecode>> { [Slot3] = scratch.Config.Decodes().ToArray() };
        if (lpc is not null) functions[LpcBridge.Address] = PciFunctionActor.Props(LpcBridge.Address, lpc, fabric);
        return Sys.ActorOf(PciHostActor.Props(functions, decodes, resetControl));
    }

    private static uint Address(PciAddress f, int register) => 0x8000_0000u | (uint)f.Bus << 16 | (uint)f.DevFn << 8 | (uint)register;

    private ulong Read(IActorRef host, object request)
    {
        host.Tell(request, TestActor);
        return ExpectMsg<AccessResult>().Value;
    }

    private ulong ConfigRead(IActorRef host, PciAddress f, int register, byte size = 4)
    {
        host.Tell(new PioWrite(0xCF8, 0, 4, Address(f, register & ~3), 0));
        return Read(host, new PioRead((ushort)(0xCFC + (register & 3)), (ushort)(4 + (register & 3)), size, 0));
    }

    private static void ConfigWrite(IActorRef host, PciAddress f, int register, byte size, uint value)
    {
        host.Tell(new PioWrite(0xCF8, 0, 4, Address(f, register & ~3), 0));
        host.Tell(new PioWrite((ushort)(0xCFC + (register & 3)), (ushort)(4 + (register & 3)), size, value, 0));
    }

    [Fact]
    public void ConfigurationCyclesReachTheFunctionAndAbsentFunctionsReadAllOnes()
    {
        var host = Host();
        Assert.Equal(0x0001_1234ul, ConfigRead(host, Slot3, VendorId));
        Assert.Equal(0x1234ul, ConfigRead(host, Slot3, VendorId, 2));
        Assert.Equal(0x00ul, ConfigRead(host, Slot3, ClassCode, 1));
        Assert.Equal(0xFFul, ConfigRead(host, Slot3, ClassCode + 2, 1));
        Assert.Equal(0xFFFF_FFFFul, ConfigRead(host, new PciAddress(4, 0), VendorId));
        Assert.Equal(0xFFFF_FFFFul, ConfigRead(host, new PciAddress(1, 3, 0), VendorId)); // no bus 1
        // Enable bit clear: no cycle.
        host.Tell(new PioWrite(0xCF8, 0, 4, Address(Slot3, 0) & 0x7FFF_FFFF, 0));
        Assert.Equal(0xFFFF_FFFFul, Read(host, new PioRead(0xCFC, 4, 4, 0)));
        // The address register reads back as a dword only.
        Assert.Equal(Address(Slot3, 0) & 0x7FFF_FFFF, Read(host, new PioRead(0xCF8, 0, 4, 0)));
        Assert.Equal(0xFFul, Read(host, new PioRead(0xCFB, 3, 1, 0)));
    }

    [Fact]
    public void EcamReachesTheSameConfigurationSpace()
    {
        var host = Host();
        var at = PciWindows.EcamBase + (3UL << 15);
        Assert.Equal(0x0001_1234ul, Read(host, new MmioRead(at, at - 0xE000_0000, 4, 0)));
        host.Tell(new MmioWrite(at + InterruptLine, 0, 1, 0x0A, 0));
        Assert.Equal(0x0Aul, Read(host, new MmioRead(at + InterruptLine, 0, 1, 0)));
        Assert.Equal(0x0Aul, ConfigRead(host, Slot3, InterruptLine, 1));
        Assert.Equal(0ul, Read(host, new MmioRead(at + 0x800, 0, 4, 0))); // extended space: no capabilities
    }

    [Fact]
    public void BarsAnswerAtTheirCurrentAddressOnlyWhileDecodeIsOnAndFollowAMove()
    {
        var host = Host();
        host.Tell(new MmioWrite(0xC000_0010, 0, 4, 0x55, 0));
        Assert.Equal(0x55ul, Read(host, new MmioRead(0xC000_0010, 0, 4, 0)));
        Assert.Equal(0xAB02ul, Read(host, new PioRead(0x2004, 0, 2, 0)));

        // Linux's sizing: decode off, all ones, read the mask, restore, decode on.
        ConfigWrite(host, Slot3, Command, 2, 0);
        Assert.Equal(0xFFFF_FFFFul, Read(host, new MmioRead(0xC000_0010, 0, 4, 0)));
        Assert.Equal(0xFFFFul, Read(host, new PioRead(0x2004, 0, 2, 0)));
        ConfigWrite(host, Slot3, Bar0, 4, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_F000ul, ConfigRead(host, Slot3, Bar0));
        // Move BAR 0 to 0xD000_0000 and turn memory decode on: the very next access finds it there.
        ConfigWrite(host, Slot3, Bar0, 4, 0xD000_0000);
        ConfigWrite(host, Slot3, Command, 2, CommandMemorySpace);
        Assert.Equal(0x55ul, Read(host, new MmioRead(0xD000_0010, 0, 4, 0)));
        Assert.Equal(0xFFFF_FFFFul, Read(host, new MmioRead(0xC000_0010, 0, 4, 0)));
        Assert.Equal(0xFFFFul, Read(host, new PioRead(0x2004, 0, 2, 0))); // I/O decode still off
        host.Tell(new MmioWrite(0xD000_0020, 0, 8, 0x1122_3344_5566_7788, 0));
        Assert.Equal(0x1122_3344_5566_7788ul, Read(host, new MmioRead(0xD000_0020, 0, 8, 0)));
    }

    [Fact]
    public void Port0xCF9BytesGoToTheResetControlRegister()
    {
        var reset = CreateTestProbe();
        var host = Host(reset);
        host.Tell(new PioWrite(0xCF9, 1, 1, 0x06, 0));
        Assert.Equal(0x06u, reset.ExpectMsg<PioWrite>().Value);
        host.Tell(new PioRead(0xCF9, 1, 1, 0), TestActor);
        reset.ExpectMsg<PioRead>();
        Assert.Equal(TestActor, reset.LastSender); // forwarded: the answer goes straight to the reader
        // A dword at 0xCF8 is the configuration address, not the reset register.
        host.Tell(new PioWrite(0xCF8, 0, 4, Address(Slot3, 0), 0));
        reset.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Equal(0x0001_1234ul, Read(host, new PioRead(0xCFC, 4, 4, 0)));
    }

    [Fact]
    public void PirqRouteRegistersOfTheLpcBridgeSteerAnAssertedInta()
    {
        var pic = CreateTestProbe();
        var ioapic = CreateTestProbe();
        var router = new PciIntxRouter(pic, ioapic);
        var route = router.Allocate(); // PIRQA steered to an IRQ, ELCR written
        pic.ExpectMsg<PioWrite>();
        pic.ExpectMsg<PioWrite>();
        var host = Host(lpc: new LpcBridge(router));
        Assert.Equal(0x2918_8086ul, ConfigRead(host, LpcBridge.Address, VendorId));
        Assert.Equal(0x06_01_00ul, ConfigRead(host, LpcBridge.Address, RevisionId) >> 8);
        Assert.Equal((ulong)route.InterruptLine, ConfigRead(host, LpcBridge.Address, 0x60, 1));
        Assert.Equal(0x8080_8000ul | route.InterruptLine, ConfigRead(host, LpcBridge.Address, 0x60));

        router.Line(route).Set(true);
        Assert.Equal(new InterruptProtocol.SetIrq(route.IoApicPin, true), ioapic.ExpectMsg<InterruptProtocol.SetIrq>());
        Assert.Equal(new InterruptProtocol.SetIrq(route.InterruptLine, true), pic.ExpectMsg<InterruptProtocol.SetIrq>());
        // The guest steers PIRQA to IRQ 11 with a dword write to 60h-63h: the level moves with it.
        ConfigWrite(host, LpcBridge.Address, 0x60, 4, 0x8080_800B);
        Assert.Equal(new InterruptProtocol.SetIrq(route.InterruptLine, false), pic.ExpectMsg<InterruptProtocol.SetIrq>());
        Assert.Equal(new InterruptProtocol.SetIrq(11, true), pic.ExpectMsg<InterruptProtocol.SetIrq>());
        Assert.Equal(0x0Bul, ConfigRead(host, LpcBridge.Address, 0x60, 1));
        Assert.Equal(11, router.SteeredIrq(0));
        Assert.Equal(PirqRegisters.RoutingDisabled, (byte)ConfigRead(host, LpcBridge.Address, 0x6B, 1));
    }
}
