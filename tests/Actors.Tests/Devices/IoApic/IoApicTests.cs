using Actorvisor.Actors.Devices.IoApic;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Tests.Devices.IoApic;

/// <summary>The IOAPIC against the 82093AA datasheet: indirect registers, redirection entries, Remote IRR.</summary>
public class IoApicTests
{
    private sealed class Sink : IApicMessageSink
    {
        public readonly List<LapicDeliver> Sent = new();
        public void Send(LapicDeliver message) => Sent.Add(message);
    }

    private readonly Sink _sink = new();
    private readonly Actorvisor.Actors.Devices.IoApic.IoApic _io;

    public IoApicTests() => _io = new Actorvisor.Actors.Devices.IoApic.IoApic(_sink);

    private uint ReadIndexed(uint index)
    {
        _io.Write(0x00, 4, index); // IOREGSEL
        return _io.Read(0x10, 4);  // IOWIN
    }

    private void WriteIndexed(uint index, uint value)
    {
        _io.Write(0x00, 4, index);
        _io.Write(0x10, 4, value);
    }

    private void Program(int pin, uint low, byte destination = 0)
    {
        WriteIndexed(0x11 + 2 * (uint)pin, (uint)destination << 24);
        WriteIndexed(0x10 + 2 * (uint)pin, low);
    }

    [Fact]
    public void VersionReports32PinsAndIdIsWritable()
    {
        Assert.Equal(0x001F_0011u, ReadIndexed(0x01)); // version 11h, max redirection entry 31
        WriteIndexed(0x00, 0xFFFF_FFFF);
        Assert.Equal(0x0F00_0000u, ReadIndexed(0x00)); // only ID bits 27:24
        WriteIndexed(0x01, 0);
        Assert.Equal(0x001F_0011u, ReadIndexed(0x01)); // read-only
    }

    [Fact]
    public void EntriesResetMaskedAndMaskedEdgesAreLost()
    {
        Assert.Equal(0x0001_0000u, ReadIndexed(0x10 + 2 * 31)); // last pin exists, masked
        _io.SetPin(4, true);
        Assert.Empty(_sink.Sent);
        Program(4, 0x30); // vector 30h, fixed, physical, edge, unmasked
        Assert.Empty(_sink.Sent); // the edge happened while masked
    }

    [Fact]
    public void EdgePinSendsOnePerRisingEdgeWithItsDestination()
    {
        Program(4, 0x0000_0830, destination: 3); // vector 30h, logical (bit 11)
        _io.SetPin(4, true);
        _io.SetPin(4, true);
        _io.SetPin(4, false);
        _io.PulsePin(4);
        Assert.Equal(2, _sink.Sent.Count);
        var m = _sink.Sent[0];
        Assert.Equal(0x30, m.Vector);
        Assert.Equal(DeliveryMode.Fixed, m.Mode);
        Assert.Equal(TriggerMode.Edge, m.Trigger);
        Assert.Equal(new ApicDestination(3, true), m.Destination);
    }

    [Fact]
    public void LevelPinSetsRemoteIrrAndEoiRedeliversWhileAsserted()
    {
        Program(10, 0x0000_8041); // vector 41h, level (bit 15)
        _io.SetPin(10, true);
        Assert.Single(_sink.Sent);
        Assert.Equal(TriggerMode.Level, _sink.Sent[0].Trigger);
        Assert.NotEqual(0u, ReadIndexed(0x10 + 20) & (1 << 14)); // Remote IRR
        _io.SetPin(10, true);
        Assert.Single(_sink.Sent); // held back by Remote IRR
        _io.EndOfInterrupt(0x41);  // still asserted: sent again
        Assert.Equal(2, _sink.Sent.Count);
        _io.SetPin(10, false);
        _io.EndOfInterrupt(0x41);
        Assert.Equal(0u, ReadIndexed(0x10 + 20) & (1 << 14));
        Assert.Equal(2, _sink.Sent.Count);
    }

    [Fact]
    public void EoiRegisterAt40hWorksLikeTheBroadcast()
    {
        Program(16, 0x0000_8050); // PCI pin, level
        _io.SetPin(16, true);
        _io.Write(0x40, 4, 0x50);
        Assert.Equal(2, _sink.Sent.Count);
    }

    [Fact]
    public void EoiForAnotherVectorLeavesRemoteIrr()
    {
        Program(10, 0x0000_8041);
        _io.SetPin(10, true);
        _io.EndOfInterrupt(0x42);
        Assert.NotEqual(0u, ReadIndexed(0x10 + 20) & (1 << 14));
    }

    [Fact]
    public void UnmaskingAnAssertedLevelPinDeliversIt()
    {
        Program(11, 0x0001_8045); // level, masked
        _io.SetPin(11, true);
        Assert.Empty(_sink.Sent);
        Program(11, 0x0000_8045);
        Assert.Single(_sink.Sent);
    }

    [Fact]
    public void ReadOnlyBitsAndReservedHighBitsIgnoreWrites()
    {
        WriteIndexed(0x10, 0xFFFF_FFFF);
        Assert.Equal(0x0001_AFFFu, ReadIndexed(0x10)); // no delivery status (12), no Remote IRR (14), no bits 31:17
        WriteIndexed(0x11, 0xFFFF_FFFF);
        Assert.Equal(0xFF00_0000u, ReadIndexed(0x11));
    }

    [Theory]
    [InlineData(0x100u, DeliveryMode.LowestPriority)]
    [InlineData(0x400u, DeliveryMode.Nmi)]
    [InlineData(0x500u, DeliveryMode.Init)]
    [InlineData(0x700u, DeliveryMode.ExtInt)]
    public void DeliveryModeIsCarriedToTheMessage(uint modeBits, DeliveryMode mode)
    {
        Program(1, 0x33 | modeBits);
        _io.PulsePin(1);
        Assert.Equal(mode, _sink.Sent.Single().Mode);
    }

    [Fact]
    public void NarrowAccessesAreIgnored()
    {
        _io.Write(0x00, 1, 0x01);
        Assert.Equal(0u, _io.Read(0x00, 4));
        Assert.Equal(0u, _io.Read(0x10, 2));
    }

    [Fact]
    public void SaveRestoreKeepsEntriesAndRemoteIrr()
    {
        Program(10, 0x0000_8041);
        _io.SetPin(10, true);
        var copy = Actorvisor.Actors.Devices.IoApic.IoApic.Restore(_io.Save(), _sink);
        Assert.Equal(_io.Entry(10), copy.Entry(10));
        copy.EndOfInterrupt(0x41);
        Assert.Equal(2, _sink.Sent.Count);
    }
}
