using Actorvisor.Actors.Devices.Pci;
using static Actorvisor.Actors.Devices.Pci.PciRegisters;

namespace Actorvisor.Actors.Tests.Devices.Pci;

/// <summary>MSI (PCI 3.0, 6.8.1) and MSI-X (6.8.2): message registers, enables, masking with pending bits, the table and PBA.</summary>
public class MsiCapabilityTests
{
    private readonly List<(ulong Address, uint Data)> _sent = new();
    private readonly PciConfigSpace _config = new(0x1AF4, 0x1041, 0x02_00_00);

    [Fact]
    public void MsiSendsItsProgrammedMessageOnlyWhenEnabled()
    {
        var msi = new MsiCapability(_config, (a, d) => _sent.Add((a, d)), perVectorMasking: false);
        Assert.False(msi.Trigger()); // off: the caller falls back to INTx
        _config.Write(msi.Offset + 4, 4, 0xFEE0_100F);  // bits 1:0 are read-only 0
        _config.Write(msi.Offset + 8, 4, 0x0000_0001);
        _config.Write(msi.Offset + 12, 2, 0x4041);
        _config.Write(msi.Offset + 2, 2, MsiCapability.ControlEnable);
        Assert.True(msi.Trigger());
        Assert.Equal([(0x1_FEE0_100CUL, 0x4041u)], _sent);
        // The 64-bit and per-vector capability bits are read-only.
        _config.Write(msi.Offset + 2, 2, 0);
        Assert.Equal(MsiCapability.Control64Bit, (ushort)_config.Read(msi.Offset + 2, 2));
    }

    [Fact]
    public void AMaskedMsiVectorIsPendingAndSentWhenUnmasked()
    {
        var msi = new MsiCapability(_config, (a, d) => _sent.Add((a, d)), perVectorMasking: true);
        _config.Write(msi.Offset + 4, 4, 0xFEE0_0000);
        _config.Write(msi.Offset + 12, 2, 0x31);
        _config.Write(msi.Offset + 16, 4, 1); // mask
        _config.Write(msi.Offset + 2, 2, MsiCapability.ControlEnable);
        Assert.True(msi.Trigger());
        Assert.Empty(_sent);
        Assert.Equal(1u, _config.Read(msi.Offset + 20, 4)); // pending bit
        _config.Write(msi.Offset + 20, 4, 0);               // read-only for software
        Assert.Equal(1u, _config.Read(msi.Offset + 20, 4));
        _config.Write(msi.Offset + 16, 4, 0);
        msi.ConfigWritten();
        Assert.Equal([(0xFEE0_0000UL, 0x31u)], _sent);
        Assert.Equal(0u, _config.Read(msi.Offset + 20, 4));
    }

    private MsixCapability NewMsix(int vectors = 3) => new(_config, (a, d) => _sent.Add((a, d)), vectors, 1, 0, 0x800);

    private static void Program(MsixCapability m, int v, ulong address, uint data, bool masked)
    {
        m.Write((ulong)v * 16, 4, (uint)address);
        m.Write((ulong)v * 16 + 4, 4, (uint)(address >> 32));
        m.Write((ulong)v * 16 + 8, 4, data);
        m.Write((ulong)v * 16 + 12, 4, masked ? 1u : 0u);
    }

    [Fact]
    public void MsixTableEntriesPowerOnMaskedAndReadBackWhatWasWritten()
    {
        var m = NewMsix();
        for (var v = 0; v < 3; v++) Assert.Equal(1ul, m.Read((ulong)v * 16 + 12, 4));
        Program(m, 1, 0xFEE0_200C, 0x4055, masked: false);
        Assert.Equal(0xFEE0_200Cul, m.Read(16, 4));
        Assert.Equal(0x4055ul, m.Read(24, 4));
        Assert.Equal(0x0000_4055_0000_0000ul | 0, m.Read(20, 8) & 0xFFFF_FFFF_0000_0000 | 0); // qword read of upper address + data
        m.Write(28, 4, 0xFFFF_FFFF);             // only bit 0 of vector control exists
        Assert.Equal(1ul, m.Read(28, 4));
        m.Write(0x800, 8, ulong.MaxValue);       // the PBA is read-only
        Assert.Equal(0ul, m.Read(0x800, 8));
    }

    [Fact]
    public void MsixDeliversUnmaskedVectorsAndHoldsMaskedOnesPending()
    {
        var m = NewMsix();
        Program(m, 0, 0xFEE0_0000, 0x41, masked: false);
        Program(m, 2, 0xFEE0_1000, 0x42, masked: true);
        Assert.False(m.Trigger(0)); // MSI-X off
        _config.Write(m.Offset + 2, 2, MsixCapability.ControlEnable);
        Assert.True(m.Trigger(0));
        Assert.True(m.Trigger(2));
        Assert.False(m.Trigger(3)); // no such vector
        Assert.Equal([(0xFEE0_0000UL, 0x41u)], _sent);
        Assert.Equal(0b100ul, m.Read(0x800, 8)); // pending bit 2
        m.Write(2 * 16 + 12, 4, 0);              // unmask vector 2: the pending message goes now
        Assert.Equal((0xFEE0_1000UL, 0x42u), _sent[^1]);
        Assert.Equal(0ul, m.Read(0x800, 8));
    }

    [Fact]
    public void TheFunctionMaskHoldsEveryVectorUntilCleared()
    {
        var m = NewMsix();
        Program(m, 0, 0xFEE0_0000, 0x41, masked: false);
        Program(m, 1, 0xFEE0_0000, 0x51, masked: false);
        _config.Write(m.Offset + 2, 2, MsixCapability.ControlEnable | MsixCapability.ControlFunctionMask);
        m.Trigger(1);
        m.Trigger(0);
        Assert.Empty(_sent);
        Assert.Equal(0b11ul, m.Read(0x800, 4));
        _config.Write(m.Offset + 2, 2, MsixCapability.ControlEnable);
        m.ConfigWritten();
        Assert.Equal([(0xFEE0_0000UL, 0x41u), (0xFEE0_0000UL, 0x51u)], _sent);
        Assert.Equal(0ul, m.Read(0x800, 4));
        // Table size is read-only.
        _config.Write(m.Offset + 2, 2, 0x07FF | MsixCapability.ControlEnable);
        Assert.Equal(2u, _config.Read(m.Offset + 2, 2) & 0x7FF);
        Assert.True(_config.MsixEnabled);
        Assert.Equal(CapabilityMsix, _config.Read(m.Offset, 1));
    }
}
