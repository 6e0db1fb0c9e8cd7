using Actorvisor.Actors.Devices.DebugExit;
using Actorvisor.Actors.Devices.FwCfg;
using Actorvisor.Actors.Devices.PcTestdev;
using static Actorvisor.Actors.Devices.FwCfg.FwCfgRegisters;
using static Actorvisor.Actors.Devices.PcTestdev.PcTestdevRegisters;

namespace Actorvisor.Actors.Tests.Devices;

public class DebugExitTests
{
    [Theory]
    [InlineData(1, 0u, 1)]
    [InlineData(1, 0x10u, 0x21)]
    [InlineData(4, 0x3Fu, 0x7F)]
    [InlineData(1, 0x1FFu, 0x1FF)] // a byte write keeps only the byte: (0xFF << 1) | 1
    public void StatusIsValueShiftedLeftOrOne(int size, uint value, int status) =>
        Assert.Equal(status, new DebugExit().Write(size, value));

    [Fact]
    public void RejectsOddPortSizes() => Assert.Throws<ArgumentException>(() => new DebugExit(0xF4, 3));
}

public class PcTestdevTests
{
    [Fact]
    public void ScratchRegisterKeepsEachByteLane()
    {
        var d = new PcTestdev();
        d.PioWrite(IoPort, 4, 0x11223344);
        Assert.Equal(0x11223344u, d.PioRead(IoPort, 4));
        d.PioWrite(IoPort + 2, 1, 0xAA);               // third byte only
        Assert.Equal(0x11AA3344u, d.PioRead(IoPort, 4));
        Assert.Equal(0xAAu, d.PioRead(IoPortByte + 2, 1)); // the byte-wise alias sees the same register
        d.PioWrite(IoPortByte, 2, 0xBEEF);
        Assert.Equal(0x11AABEEFu, d.Scratch);
    }

    [Fact]
    public void IrqPortsRaiseAndLowerTheirLine()
    {
        var d = new PcTestdev();
        Assert.Equal(new PcTestdevEffect.SetIrq(10, true), d.PioWrite(IrqLine + 10, 1, 1));
        Assert.Equal(new PcTestdevEffect.SetIrq(10, false), d.PioWrite(IrqLine + 10, 1, 0));
        Assert.Null(d.PioWrite(IrqLine + 24, 1, 1)); // beyond the 24 lines
        Assert.Null(d.PioWrite(IrqLine + 3, 2, 1));  // lines take byte writes only
    }

    [Fact]
    public void FlushTakesAPageAddress() =>
        Assert.Equal(new PcTestdevEffect.FlushPage(0x123000), new PcTestdev().PioWrite(FlushPage, 4, 0x123456));

    [Fact]
    public void IoMemIsRamLikeAndBounded()
    {
        var d = new PcTestdev();
        d.MmioWrite(0x100, 8, 0x0102030405060708);
        Assert.Equal(0x0102030405060708UL, d.MmioRead(0x100, 8));
        Assert.Equal(0x0506UL, d.MmioRead(0x102, 2)); // bytes 06 05, little-endian
        d.MmioWrite(IoMemSize - 2, 4, 0xFFFF_FFFF); // runs off the end: ignored, no host fault
        Assert.Equal(0UL, d.MmioRead(IoMemSize - 4, 2));
        Assert.Equal(0xFFFF_FFFFUL, d.MmioRead(IoMemSize - 2, 4));
    }
}

public class FwCfgTests
{
    private static byte[] ReadItem(FwCfg f, ushort key, int length)
    {
        f.Write(SelectorPort, 2, key);
        return Enumerable.Range(0, length).Select(_ => (byte)f.Read(DataPort, 1)).ToArray();
    }

    [Fact]
    public void SignatureIsQemu() => Assert.Equal("QEMU"u8.ToArray(), ReadItem(new FwCfg(256 << 20, 2, 4), Signature, 4));

    [Fact]
    public void ReportsRamAndCpusLittleEndian()
    {
        var f = new FwCfg(0x1_2000_0000, 3, 8);
        Assert.Equal(0x1_2000_0000UL, BitConverter.ToUInt64(ReadItem(f, RamSize, 8)));
        Assert.Equal((ushort)3, BitConverter.ToUInt16(ReadItem(f, NbCpus, 2)));
        Assert.Equal((ushort)8, BitConverter.ToUInt16(ReadItem(f, MaxCpus, 2)));
        Assert.Equal(IdTraditional, BitConverter.ToUInt32(ReadItem(f, Id, 4)));
    }

    [Fact]
    public void SelectingRewindsAndReadsPastTheEndAreZero()
    {
        var f = new FwCfg(1 << 20, 1, 1);
        Assert.Equal((byte)'Q', ReadItem(f, Signature, 1)[0]);
        Assert.Equal("QEMU\0\0"u8.ToArray(), ReadItem(f, Signature, 6));
        Assert.Equal(new byte[4], ReadItem(f, 0x1234, 4)); // unknown key
    }
}
