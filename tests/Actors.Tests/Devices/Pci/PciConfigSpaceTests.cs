using Actorvisor.Actors.Devices.Pci;
using Actorvisor.Actors.Tests.Devices;
using static Actorvisor.Actors.Devices.Pci.PciRegisters;

namespace Actorvisor.Actors.Tests.Devices.Pci;

/// <summary>The type 0 header against PCI Local Bus 3.0, 6.1-6.2 and 6.7: bit semantics, BAR sizing, capabilities, INTx.</summary>
public class PciConfigSpaceTests
{
    private static PciConfigSpace NewSpace() => new(0x1234, 0x5678, 0x02_00_00, revision: 3, subsystemVendor: 0xAAAA, subsystem: 0xBBBB);

    [Fact]
    public void IdentificationRegistersAreReadOnly()
    {
        var c = NewSpace();
        Assert.Equal(0x5678_1234u, c.Read(VendorId, 4));
        Assert.Equal(0x02_00_00_03u, c.Read(RevisionId, 4));
        Assert.Equal(0xBBBB_AAAAu, c.Read(SubsystemVendorId, 4));
        c.Write(VendorId, 4, 0xFFFF_FFFF);
        c.Write(RevisionId, 4, 0);
        c.Write(SubsystemVendorId, 4, 0);
        Assert.Equal(0x5678_1234u, c.Read(VendorId, 4));
        Assert.Equal(0x02_00_00_03u, c.Read(RevisionId, 4));
        Assert.Equal(0xBBBB_AAAAu, c.Read(SubsystemVendorId, 4));
    }

    [Fact]
    public void CommandKeepsOnlyItsDefinedBitsAndStatusErrorsAreWriteOneToClear()
    {
        var c = NewSpace();
        c.Write(Command, 2, 0xFFFF);
        Assert.Equal(CommandWritable, c.Read(Command, 2));
        Assert.True(c.IoEnabled && c.MemoryEnabled && c.BusMaster && c.IntxDisabled);
        // Status error bits set by the device: a write of 1 clears only the written bits, a 0 leaves them.
        c.Set16(Status, 0xF900);
        c.Write(Status, 2, 0x0100);
        Assert.Equal(0xF800u, c.Read(Status, 2));
        c.Write(Status, 2, 0x0000);
        Assert.Equal(0xF800u, c.Read(Status, 2));
        // A dword write to the command register with zeros in the status half clears nothing there.
        c.Write(Command, 4, 0x0000_0003);
        Assert.Equal(0xF800_0003u, c.Read(Command, 4));
        c.Write(Command, 4, 0x8000_0003);
        Assert.Equal(0x7800_0003u, c.Read(Command, 4));
    }

    [Fact]
    public void ReadWriteRegistersAndExtendedSpace()
    {
        var c = NewSpace();
        c.Write(CacheLineSize, 1, 0x10);
        c.Write(LatencyTimer, 1, 0x40);
        c.Write(InterruptLine, 1, 0x0B);
        c.Write(InterruptPin, 1, 0x04);
        Assert.Equal(0x10u, c.Read(CacheLineSize, 1));
        Assert.Equal(0x40u, c.Read(LatencyTimer, 1));
        Assert.Equal(0x0Bu, c.Read(InterruptLine, 1));
        Assert.Equal(0u, c.Read(InterruptPin, 1)); // read-only: no pin
        // ECAM's bytes 256-4095: no extended capabilities, reads 0, writes vanish.
        Assert.Equal(0u, c.Read(0x100, 4));
        c.Write(0x100, 4, 0xFFFF_FFFF);
        Assert.Equal(0u, c.Read(0xFFC, 4));
        Assert.Equal(0u, c.Read(0x100, 4));
        Assert.Equal(0u, c.Read(ExpansionRom, 4)); // no ROM
    }

    public static TheoryData<PciBarKind, ulong, bool, uint> Bars => new()
    {
        { PciBarKind.Io, 0x20, false, 0xFFFF_FFE1 & 0xFFFF },
        { PciBarKind.Memory32, 0x1000, false, 0xFFFF_F000 },
        { PciBarKind.Memory32, 0x10_0000, true, 0xFFF0_0008 },
        { PciBarKind.Memory64, 0x4000, true, 0xFFFF_C00C },
        { PciBarKind.Memory64, 0x4000, false, 0xFFFF_C004 },
    };

    /// <summary>Sizing (6.2.5.1): save, write all ones, read the mask with the type bits, restore.</summary>
    [Theory]
    [MemberData(nameof(Bars))]
    public void BarSizingRoundTrip(PciBarKind kind, ulong size, bool prefetchable, uint sizedLow)
    {
        var c = NewSpace();
        c.DefineBar(2, new PciBar(kind, size, prefetchable), kind == PciBarKind.Io ? 0x2040UL : 0x1_2340_0000UL & (kind == PciBarKind.Memory64 ? ulong.MaxValue : 0xFFFF_FFFF));
        var at = Bar0 + 8;
        var saved = c.Read(at, 4);
        var savedHigh = c.Read(at + 4, 4);
        c.Write(at, 4, 0xFFFF_FFFF);
        Assert.Equal(sizedLow, c.Read(at, 4));
        if (kind == PciBarKind.Memory64)
        {
            c.Write(at + 4, 4, 0xFFFF_FFFF);
            Assert.Equal(0xFFFF_FFFFu, c.Read(at + 4, 4));
            var mask = (ulong)c.Read(at + 4, 4) << 32 | c.Read(at, 4) & ~0xFu;
            Assert.Equal(size, ~mask + 1);
        }
        else
        {
            var mask = c.Read(at, 4) & (kind == PciBarKind.Io ? 0xFFFF_FFFC : 0xFFFF_FFF0);
            Assert.Equal(size, (ulong)((kind == PciBarKind.Io ? ~mask & 0xFFFF : ~mask) + 1));
        }
        c.Write(at, 4, saved);
        c.Write(at + 4, 4, savedHigh);
        Assert.Equal(saved, c.Read(at, 4));
        Assert.Equal(savedHigh, c.Read(at + 4, 4));
        // The type bits are read-only: what we wrote back was the address plus those bits.
        Assert.Equal(kind == PciBarKind.Io ? 1u : (prefetchable ? 8u : 0u) | (kind == PciBarKind.Memory64 ? 4u : 0u), saved & 0xF & (kind == PciBarKind.Io ? 3u : 0xFu));
    }

    [Fact]
    public void A64BitBarMovesAbove4GiBAndDecodesOnlyWithMemorySpaceOn()
    {
        var c = NewSpace();
        c.DefineBar(4, new PciBar(PciBarKind.Memory64, 0x4000, true));
        c.DefineBar(0, new PciBar(PciBarKind.Io, 0x40));
        c.Write(Bar0 + 16, 4, 0xC000_4000);
        c.Write(Bar0 + 20, 4, 0x10);
        c.Write(Bar0, 4, 0x3000);
        Assert.Empty(c.Decodes());
        c.Write(Command, 2, CommandMemorySpace);
        Assert.Equal([new PciBarDecode(4, false, 0x10_C000_4000, 0x4000)], c.Decodes());
        c.Write(Command, 2, CommandIoSpace);
        Assert.Equal([new PciBarDecode(0, true, 0x3000, 0x40)], c.Decodes());
        // Unimplemented BAR slots read 0 and ignore writes.
        c.Write(Bar0 + 4, 4, 0xFFFF_FFFF);
        Assert.Equal(0u, c.Read(Bar0 + 4, 4));
        // A byte write to a BAR changes only that byte of the address.
        c.Write(Bar0 + 1, 1, 0x50);
        Assert.Equal(0x5001u, c.Read(Bar0, 4));
    }

    [Fact]
    public void CapabilityListWalksFromThePointerThroughEveryCapability()
    {
        var c = NewSpace();
        Assert.Equal(0u, c.Read(Status, 2) & StatusCapabilities);
        var msi = new MsiCapability(c, (_, _) => { }, perVectorMasking: true);
        var msix = new MsixCapability(c, (_, _) => { }, 4, 1, 0, 0x800);
        var vendor = c.AddCapability(CapabilityVendor, [6, 1, 2, 3]);
        Assert.NotEqual(0u, c.Read(Status, 2) & StatusCapabilities);

        var found = new List<(int At, byte Id)>();
        var seen = new HashSet<int>();
        for (var at = (int)c.Read(CapabilitiesPointer, 1); at != 0; at = (int)c.Read(at + 1, 1))
        {
            Assert.True(seen.Add(at), "the list loops");
            Assert.True(at >= FirstCapability && at % 4 == 0, $"capability at {at:X} is not dword-aligned in the device area");
            found.Add((at, (byte)c.Read(at, 1)));
        }
        Assert.Equal([(msi.Offset, CapabilityMsi), (msix.Offset, CapabilityMsix), (vendor, CapabilityVendor)], found);
        Assert.Equal(0x40, msi.Offset);
        Assert.True(msix.Offset >= msi.Offset + 24); // MSI with per-vector masking is 24 bytes
        Assert.Equal(0x180u, c.Read(msi.Offset + 2, 2)); // 64-bit, per-vector masking
        Assert.Equal(3u, c.Read(msix.Offset + 2, 2));    // table size - 1
        Assert.Equal(1u, c.Read(msix.Offset + 4, 4));    // table at BAR 1 offset 0
        Assert.Equal(0x801u, c.Read(msix.Offset + 8, 4));
    }

    [Fact]
    public void IntxFollowsTheInterruptStatusUnlessDisabledOrMsiOrMsixIsOn()
    {
        var c = NewSpace();
        var line = new RecordingIrqLine();
        c.Intx = line;
        var msi = new MsiCapability(c, (_, _) => { }, false);
        var msix = new MsixCapability(c, (_, _) => { }, 2, 1, 0, 0x800);

        c.SetInterruptLevel(true);
        Assert.True(line.Level);
        Assert.NotEqual(0u, c.Read(Status, 2) & StatusInterrupt);

        c.Write(Command, 2, CommandIntxDisable); // 6.2.2 bit 10: the wire drops, the status bit stays
        Assert.False(line.Level);
        Assert.NotEqual(0u, c.Read(Status, 2) & StatusInterrupt);
        c.Write(Command, 2, 0);
        Assert.True(line.Level);

        c.Write(msi.Offset + 2, 2, MsiCapability.ControlEnable);
        Assert.False(line.Level);
        c.Write(msi.Offset + 2, 2, 0);
        Assert.True(line.Level);

        c.Write(msix.Offset + 2, 2, MsixCapability.ControlEnable);
        Assert.False(line.Level);
        c.Write(msix.Offset + 2, 2, 0);
        Assert.True(line.Level);

        c.SetInterruptLevel(false);
        Assert.False(line.Level);
        Assert.Equal(0u, c.Read(Status, 2) & StatusInterrupt);
        Assert.Equal(4, line.Rises); // raised at first and after each unmasking
    }
}
