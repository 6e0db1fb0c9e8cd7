using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Devices.DebugExit;
using Actorvisor.Actors.Devices.FwCfg;
using Actorvisor.Actors.Devices.PcTestdev;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Tests.Devices;

/// <summary>The thin actors around isa-debug-exit, pc-testdev and fw_cfg: messages in, effects out.</summary>
public class TestDeviceActorTests : TestKit
{
    [Fact]
    public void DebugExitWriteAsksTheVmToEndWithQemusStatus()
    {
        var vm = CreateTestProbe();
        var exit = Sys.ActorOf(DebugExitActor.Props(new DebugExit(), vm));
        exit.Tell(new PioWrite(0xF4, 0, 4, 0x31, 0));
        Assert.Equal(new DebugExitProtocol.ExitRequested(0x63, 0x31), vm.ExpectMsg<DebugExitProtocol.ExitRequested>());
        exit.Tell(new PioRead(0xF4, 0, 2, 0));
        Assert.Equal(0xFFFFUL, ExpectMsg<AccessResult>().Value);
    }

    [Fact]
    public void PcTestdevIrqWritesBecomeSetIrqForTheFabric()
    {
        var fabric = CreateTestProbe();
        using var memory = new GuestMemory(1 << 20);
        var dev = Sys.ActorOf(PcTestdevActor.Props(fabric, memory));
        dev.Tell(new PioWrite(0x2005, 5, 1, 1, 0));
        dev.Tell(new PioWrite(0x2005, 5, 1, 0, 0));
        dev.Tell(new PioWrite(0x2017, 0x17, 1, 0xFF, 0));
        Assert.Equal((5, true), Line(fabric.ExpectMsg<InterruptProtocol.SetIrq>()));
        Assert.Equal((5, false), Line(fabric.ExpectMsg<InterruptProtocol.SetIrq>()));
        Assert.Equal((23, true), Line(fabric.ExpectMsg<InterruptProtocol.SetIrq>()));
        fabric.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    private static (int, bool) Line(InterruptProtocol.SetIrq m) => (m.Gsi, m.Level);

    [Fact]
    public void PcTestdevFlushDropsTheDecodedCodeOfThatPageAndIgnoresPagesOutsideRam()
    {
        using var memory = new GuestMemory(1 << 20);
        const ulong page = 0x5000;
        memory.MarkCode(page >> GuestMemory.PageShift);
        var before = memory.CodeVersion(page >> GuestMemory.PageShift);
        var dev = Sys.ActorOf(PcTestdevActor.Props(CreateTestProbe(), memory));
        dev.Tell(new PioWrite(0xE4, 0, 4, (uint)page + 0x123, 0));
        dev.Tell(new PioWrite(0xE4, 0, 4, 0xFFFF_F000, 0)); // not RAM: nothing to drop, no host fault
        // A read behind the writes: when it is answered, both writes have been handled.
        dev.Tell(new PioRead(0xE0, 0, 4, 0));
        ExpectMsg<AccessResult>();
        Assert.Equal(before + 1, memory.CodeVersion(page >> GuestMemory.PageShift));
        Assert.False(memory.IsCodePage(page >> GuestMemory.PageShift));
    }

    [Fact]
    public void PcTestdevScratchAndIoMemAnswerThroughMessages()
    {
        using var memory = new GuestMemory(1 << 20);
        var dev = Sys.ActorOf(PcTestdevActor.Props(CreateTestProbe(), memory));
        dev.Tell(new PioWrite(0xE0, 0, 4, 0xDEADBEEF, 0));
        dev.Tell(new PioRead(0xE8, 8, 1, 0)); // the byte-wise alias of the same register
        Assert.Equal(0xEFUL, ExpectMsg<AccessResult>().Value);
        dev.Tell(new MmioWrite(0xFF000040, 0x40, 4, 0x12345678, 0));
        dev.Tell(new MmioRead(0xFF000042, 0x42, 2, 0));
        Assert.Equal(0x1234UL, ExpectMsg<AccessResult>().Value);
    }

    [Fact]
    public void FwCfgAnswersSelectorThenDataBytes()
    {
        var fw = Sys.ActorOf(FwCfgActor.Props(0x4000_0000, 2, 2));
        fw.Tell(new PioWrite(0x510, 0, 2, FwCfgRegisters.NbCpus, 0));
        fw.Tell(new PioRead(0x511, 1, 1, 0));
        Assert.Equal(2UL, ExpectMsg<AccessResult>().Value);
        fw.Tell(new PioWrite(0x510, 0, 2, FwCfgRegisters.RamSize, 0));
        var ram = 0UL;
        for (var i = 0; i < 8; i++)
        {
            fw.Tell(new PioRead(0x511, 1, 1, 0));
            ram |= ExpectMsg<AccessResult>().Value << (8 * i);
        }
        Assert.Equal(0x4000_0000UL, ram);
    }
}
