using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Cpu;
using Actorvisor.Kernel.Bus;
using static Actorvisor.Kernel.Messages.AccessProtocol;

namespace Actorvisor.Actors.Tests.Cpu;

/// <summary>The vCPU's side of the bus: posted writes, blocking reads on the reusable reply target.</summary>
public class ActorBusPlatformTests : TestKit
{
    private readonly TestProbe _device;
    private readonly ActorBusPlatform _platform;

    public ActorBusPlatformTests()
    {
        _device = CreateTestProbe("device");
        var bus = IoBus<IActorRef>.Empty.AddPio(0x3F8, 8, _device).AddMmio(0xFED00000, 0x400, _device);
        _platform = new ActorBusPlatform(Sys, bus, TestActor, TimeSpan.FromSeconds(5));
    }

    /// <summary>The device answers every read with a value made of its offset, so each reply is recognisable.</summary>
    private void AnswerReads() => _device.SetAutoPilot(new DelegateAutoPilot((sender, message) =>
    {
        switch (message)
        {
            case PioRead r: sender.Tell(new AccessResult(0xABCD_EF00UL | r.Offset)); break;
            case MmioRead r: sender.Tell(new AccessResult(0x1122_3344_5566_7700UL | r.Offset)); break;
        }
        return AutoPilot.KeepRunning;
    }));

    [Fact]
    public void WritesArePostedWithTheOffsetInsideTheRange()
    {
        _platform.PortWrite(1, 0x3FB, 1, 0x183);
        var w = _device.ExpectMsg<PioWrite>();
        Assert.Equal((ushort)0x3FB, w.Port);
        Assert.Equal((ushort)3, w.Offset);
        Assert.Equal((byte)1, w.Size);
        Assert.Equal(0x83u, w.Value); // masked to the access size
        Assert.Equal(1, w.VcpuId);
        Assert.Equal(TestActor, _device.LastSender);
    }

    [Fact]
    public void ReadsWaitForTheDevicesAnswerMaskedToTheirSize()
    {
        AnswerReads();
        Assert.Equal(0x05u, _platform.PortRead(0, 0x3FD, 1));
        Assert.Equal(0xEF04u, _platform.PortRead(0, 0x3FC, 2));
        Assert.Equal(0x5566_7708UL, _platform.MmioRead(0, 0xFED00008, 4));
        Assert.Equal(0x1122_3344_5566_7710UL, _platform.MmioRead(0, 0xFED00010, 8));
    }

    [Fact]
    public void ManyReadsInARowEachGetTheirOwnReply()
    {
        AnswerReads();
        for (var i = 0; i < 2000; i++)
        {
            var offset = (ushort)(i % 8);
            Assert.Equal(offset, _platform.PortRead(0, (ushort)(0x3F8 + offset), 1));
        }
        Assert.Equal(0, _platform.ReplyTarget.StrayReplies);
    }

    [Fact]
    public void UnassignedAddressesReadAllOnesAndDropWritesAndAreCounted()
    {
        Assert.Equal(0xFFu, _platform.PortRead(0, 0x80, 1));
        Assert.Equal(0xFFFFu, _platform.PortRead(0, 0x80, 2));
        Assert.Equal(0xFFFF_FFFFu, _platform.PortRead(0, 0xCF8, 4));
        _platform.PortWrite(0, 0x80, 1, 0x12);
        Assert.Equal(0xFFFF_FFFFUL, _platform.MmioRead(0, 0xFEC00000, 4));
        Assert.Equal(ulong.MaxValue, _platform.MmioRead(0, 0xFEC00000, 8));
        _platform.MmioWrite(0, 0xFEC00000, 4, 1);
        Assert.Equal(3, _platform.UnassignedPortReads);
        Assert.Equal(1, _platform.UnassignedPortWrites);
        Assert.Equal(2, _platform.UnassignedMmioReads);
        Assert.Equal(1, _platform.UnassignedMmioWrites);
        _device.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void AnAccessRunningOffTheEndOfADeviceIsUnassigned()
    {
        Assert.Equal(0xFFFF_FFFFu, _platform.PortRead(0, 0x3FE, 4));
        _platform.PortWrite(0, 0x3FF, 2, 0);
        _device.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Equal(1, _platform.UnassignedPortReads);
    }

    [Fact]
    public void ASilentDeviceBecomesAClearErrorNotAHang()
    {
        var platform = new ActorBusPlatform(Sys, IoBus<IActorRef>.Empty.AddPio(0x3F8, 8, _device), TestActor, TimeSpan.FromMilliseconds(200));
        var e = Assert.Throws<DeviceTimeoutException>(() => platform.PortRead(0, 0x3FD, 1));
        Assert.Contains("port 0x3fd", e.Message);
        Assert.Contains(_device.Ref.Path.ToString(), e.Message);
        // The reply that finally comes is counted and dropped, not taken for the next read.
        _device.ExpectMsg<PioRead>();
        _device.LastSender.Tell(new AccessResult(1));
        AwaitCondition(() => platform.ReplyTarget.StrayReplies == 1);
    }

    [Fact]
    public void StoppingTheVcpuCancelsAWaitingRead()
    {
        using var cancel = new CancellationTokenSource();
        _platform.Cancel = cancel.Token;
        var read = Task.Run(() => _platform.PortRead(0, 0x3F8, 1));
        _device.ExpectMsg<PioRead>();
        cancel.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => read.GetAwaiter().GetResult());
    }

    [Fact]
    public void ANewBusSnapshotTakesEffectForLaterAccesses()
    {
        var other = CreateTestProbe();
        _platform.Bus = _platform.Bus.AddPio(0x2F8, 8, other);
        _platform.PortWrite(0, 0x2F8, 1, 0x41);
        other.ExpectMsg<PioWrite>(w => w.Offset == 0 && w.Value == 0x41);
    }
}
