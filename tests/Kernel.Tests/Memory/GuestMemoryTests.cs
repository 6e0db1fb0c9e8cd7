using Actorvisor.Kernel.Memory;

namespace Actorvisor.Kernel.Tests.Memory;

public class GuestMemoryTests
{
    [Fact]
    public void SmallGuestIsOneRegionFromZero()
    {
        using var m = new GuestMemory(64 << 20);
        Assert.Single(m.Regions);
        Assert.Equal(64UL << 20, m.TopOfRam);
        Assert.True(m.IsRam(0, 64 << 20));
        Assert.False(m.IsRam((64 << 20) - 1, 2));
    }

    [Fact]
    public void LargeGuestSkipsThePciHole()
    {
        // 5 GiB: 3 GiB below the hole, 2 GiB from 4 GiB. MAP_NORESERVE keeps this cheap.
        using var m = new GuestMemory(5UL << 30);
        Assert.Equal(2, m.Regions.Count);
        Assert.Equal(GuestMemory.PciHoleStart, m.Regions[0].Size);
        Assert.Equal(GuestMemory.HighRamStart, m.Regions[1].GuestBase);
        Assert.Equal(2UL << 30, m.Regions[1].Size);
        Assert.Equal(6UL << 30, m.TopOfRam);
        Assert.False(m.IsRam(GuestMemory.PciHoleStart, 1));          // the hole is MMIO space
        Assert.False(m.IsRam(GuestMemory.PciHoleStart - 4, 8));      // a range running into the hole
        m.WriteUInt64(GuestMemory.HighRamStart + 0x1000, 0x1122334455667788);
        Assert.Equal(0x1122334455667788UL, m.ReadUInt64(GuestMemory.HighRamStart + 0x1000));
    }

    [Theory]
    [InlineData(0x1000000UL, 1)]               // just past the end
    [InlineData(0xFFFFFFUL, 2)]                // straddles the end
    [InlineData(ulong.MaxValue - 3, 8)]        // would wrap around
    public void AccessesOutsideRamFailWithoutTouchingTheHost(ulong gpa, int length)
    {
        using var m = new GuestMemory(16 << 20);
        Assert.False(m.TryRead(gpa, new byte[length]));
        Assert.False(m.TryWrite(gpa, new byte[length]));
        Assert.Throws<GuestMemoryException>(() => m.Read(gpa, new byte[length]));
        Assert.Null(m.TryGetSpan(gpa, length, out _) ? (object)1 : null);
    }

    [Fact]
    public void RefusesTinyOrUnalignedSizes()
    {
        Assert.Throws<ArgumentException>(() => new GuestMemory(4096));
        Assert.Throws<ArgumentException>(() => new MemoryRegion(0, 4097));
        Assert.Throws<ArgumentException>(() => new MemoryRegion(1, 4096));
    }

    [Fact]
    public void CodePagesAreInvalidatedByWritesAndRemarkedByTheDecoder()
    {
        using var m = new GuestMemory(16 << 20);
        var v0 = m.MarkCode(5);
        Assert.True(m.IsCodePage(5));
        m.WriteByte(5 * 4096 + 7, 0x90);              // a write into a code page...
        Assert.False(m.IsCodePage(5));                 // ...clears the mark...
        Assert.Equal(v0 + 1, m.CodeVersion(5));        // ...and bumps the version blocks compare against
        m.WriteByte(5 * 4096 + 8, 0x90);
        Assert.Equal(v0 + 1, m.CodeVersion(5));        // unmarked pages cost nothing more
        Assert.Equal(v0 + 1, m.MarkCode(5));
        m.Write(4 * 4096 + 4090, new byte[10]);         // a write spanning into the code page
        Assert.Equal(v0 + 2, m.CodeVersion(5));
        m.InvalidateCodePage(1UL << 40);               // beyond RAM: ignored, not a host fault
        Assert.Equal(0, m.MarkCode(1UL << 40));
    }

    [Fact]
    public unsafe void RegionsHaveGuardPagesAroundThem()
    {
        // The bytes just outside a region are in the PROT_NONE guard: check their protection with mincore-free
        // means by asking /proc/self/maps for the mapping that holds the region's first byte.
        using var r = new MemoryRegion(0, 1 << 20);
        var start = (ulong)r.Host;
        var maps = File.ReadAllLines("/proc/self/maps")
            .Select(l => l.Split(' '))
            .Select(p => (Range: p[0].Split('-').Select(x => Convert.ToUInt64(x, 16)).ToArray(), Perms: p[1]))
            .ToList();
        var inside = maps.Single(m => m.Range[0] <= start && start < m.Range[1]);
        Assert.StartsWith("rw", inside.Perms);
        var below = maps.Single(m => m.Range[0] <= start - 1 && start - 1 < m.Range[1]);
        Assert.StartsWith("---", below.Perms);
        var end = start + (1 << 20);
        var above = maps.Single(m => m.Range[0] <= end && end < m.Range[1]);
        Assert.StartsWith("---", above.Perms);
    }
}
