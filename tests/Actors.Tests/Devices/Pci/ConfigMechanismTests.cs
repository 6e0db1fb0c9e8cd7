using Actorvisor.Actors.Devices.Pci;
using Actorvisor.Actors.Devices.Pci.Host;

namespace Actorvisor.Actors.Tests.Devices.Pci;

/// <summary>Configuration mechanism #1 (PCI 3.0, 3.2.2.3.2) and ECAM (PCIe 3.0, 7.2.2) address decoding.</summary>
public class ConfigMechanismTests
{
    [Fact]
    public void OnlyADwordWriteTo0xCF8LatchesTheAddressAndReservedBitsReadZero()
    {
        var m = new ConfigMechanism1();
        m.WriteAddress(0, 4, 0xFFFF_FFFF);
        Assert.Equal(0x80FF_FFFCu, m.ReadAddress(0, 4));
        m.WriteAddress(0, 4, 0);
        m.WriteAddress(3, 1, 0x80);   // a byte at 0xCFB: not a configuration address write (Linux's type 1 probe does this)
        m.WriteAddress(0, 2, 0x1234); // nor a word
        Assert.Equal(0u, m.ReadAddress(0, 4));
        Assert.Null(m.ReadAddress(0, 1));
        Assert.Null(m.ReadAddress(2, 2));
    }

    [Fact]
    public void DataPortsDecodeBusDeviceFunctionAndRegisterPlusThePortOffset()
    {
        var m = new ConfigMechanism1();
        m.WriteAddress(0, 4, 0x8000_0000 | 0x00 << 16 | 0x1F << 11 | 0x0 << 8 | 0x60);
        Assert.Equal(new ConfigCycle(new PciAddress(0, 0x1F, 0), 0x60), m.Decode(0, 4));
        Assert.Equal(new ConfigCycle(new PciAddress(0, 0x1F, 0), 0x63), m.Decode(3, 1));
        Assert.Equal(new ConfigCycle(new PciAddress(0, 0x1F, 0), 0x62), m.Decode(2, 2));
        m.WriteAddress(0, 4, 0x8000_0000 | 0x05 << 16 | 0x03 << 11 | 0x7 << 8 | 0xFC);
        Assert.Equal(new ConfigCycle(new PciAddress(5, 3, 7), 0xFC), m.Decode(0, 4));
    }

    [Fact]
    public void DisabledOrMisalignedDataAccessesAreNoCycles()
    {
        var m = new ConfigMechanism1();
        m.WriteAddress(0, 4, 0x0000_1800); // enable bit clear
        Assert.Null(m.Decode(0, 4));
        m.WriteAddress(0, 4, 0x8000_1800);
        Assert.Null(m.Decode(1, 2)); // a word at 0xCFD
        Assert.Null(m.Decode(2, 4)); // a dword leaving 0xCFF
        Assert.Null(m.Decode(0, 3));
    }

    [Fact]
    public void EcamOffsetsNameBusDeviceFunctionAndA4KiBRegisterSpace()
    {
        Assert.Equal(new ConfigCycle(new PciAddress(0, 3, 0), 0x10), ConfigMechanism1.DecodeEcam(3 << 15 | 0x10, 4));
        Assert.Equal(new ConfigCycle(new PciAddress(0, 0x1F, 7), 0xFFC), ConfigMechanism1.DecodeEcam(0x1F << 15 | 7 << 12 | 0xFFC, 4));
        Assert.Equal(new ConfigCycle(new PciAddress(2, 0, 0), 0x100), ConfigMechanism1.DecodeEcam(2 << 20 | 0x100, 2));
        Assert.Null(ConfigMechanism1.DecodeEcam(0xFFE, 4)); // crosses into the next function
        Assert.Null(ConfigMechanism1.DecodeEcam(0x11, 2));  // misaligned
        Assert.Null(ConfigMechanism1.DecodeEcam(0x10, 8));
    }
}
