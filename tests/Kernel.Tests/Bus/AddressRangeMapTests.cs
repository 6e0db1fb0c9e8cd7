using Actorvisor.Kernel.Bus;

namespace Actorvisor.Kernel.Tests.Bus;

public class AddressRangeMapTests
{
    private static AddressRangeMap<string> Map() => AddressRangeMap<string>.Empty
        .Add(0x3F8, 8, "com1")
        .Add(0x2F8, 8, "com2")
        .Add(0x60, 1, "kbd-data")
        .Add(0x64, 1, "kbd-cmd");

    [Theory]
    [InlineData(0x3F8, 8)]  // the same range
    [InlineData(0x3FA, 1)]  // starts inside
    [InlineData(0x3F0, 9)]  // ends inside (its last byte is 0x3F8)
    [InlineData(0x3F0, 32)] // contains com1
    [InlineData(0x3FC, 2)]  // inside com1
    [InlineData(0x3FF, 16)] // starts at com1's last byte
    public void RefusesOverlappingRanges(ulong newBase, ulong newLength)
    {
        var map = Map();
        var e = Assert.Throws<BusRegistrationException>(() => map.Add(newBase, newLength, "intruder"));
        Assert.Contains("overlaps", e.Message);
        Assert.Contains("com1", e.Message);
    }

    [Fact]
    public void AcceptsRangesThatOnlyTouch()
    {
        var map = Map().Add(0x3F0, 8, "below").Add(0x400, 4, "above");
        Assert.Equal(6, map.Count);
        Assert.True(map.TryFind(0x3F7, 1, out var below));
        Assert.Equal("below", below.Target);
        Assert.True(map.TryFind(0x400, 1, out var above));
        Assert.Equal("above", above.Target);
    }

    [Fact]
    public void RefusesZeroLengthAndWrappingRanges()
    {
        Assert.Throws<BusRegistrationException>(() => AddressRangeMap<string>.Empty.Add(0x1000, 0, "empty"));
        Assert.Throws<BusRegistrationException>(() => AddressRangeMap<string>.Empty.Add(ulong.MaxValue - 3, 8, "wraps"));
    }

    [Fact]
    public void RegistrationLeavesTheOldSnapshotUnchanged()
    {
        var before = Map();
        var after = before.Add(0x70, 2, "rtc");
        Assert.False(before.TryFind(0x70, 1, out _));
        Assert.True(after.TryFind(0x71, 1, out _));
        Assert.Equal(4, before.Count);
    }

    [Theory]
    [InlineData(0x3F8, "com1", 0x3F8, 0)]
    [InlineData(0x3FD, "com1", 0x3F8, 5)]
    [InlineData(0x3FF, "com1", 0x3F8, 7)]
    [InlineData(0x2F8, "com2", 0x2F8, 0)]
    [InlineData(0x64, "kbd-cmd", 0x64, 0)]
    public void LookupFindsTheRangeAndTheOffset(ulong address, string target, ulong baseAddress, ulong offset)
    {
        Assert.True(Map().TryFind(address, 1, out var hit));
        Assert.Equal(target, hit.Target);
        Assert.Equal(baseAddress, hit.Base);
        Assert.Equal(offset, hit.Offset);
    }

    [Theory]
    [InlineData(0x0)]      // below every range
    [InlineData(0x61)]     // between kbd-data and kbd-cmd
    [InlineData(0x300)]    // between com2 and com1
    [InlineData(0x400)]    // one past com1
    [InlineData(0xFFFF)]   // far above
    public void LookupMissesAddressesNoRangeHolds(ulong address)
    {
        Assert.False(Map().TryFind(address, 1, out _));
    }

    [Theory]
    [InlineData(0x3FF, 2)] // last byte plus one past the end
    [InlineData(0x3FE, 4)]
    [InlineData(0x60, 2)]  // a one-port device read as a word
    [InlineData(0x3FC, 8)]
    public void AccessRunningOffTheEndOfARangeIsNotFound(ulong address, ulong size)
    {
        Assert.False(Map().TryFind(address, size, out _));
    }

    [Fact]
    public void AccessEndingExactlyAtTheEndIsFound()
    {
        Assert.True(Map().TryFind(0x3FC, 4, out var hit));
        Assert.Equal(4UL, hit.Offset);
        Assert.True(Map().TryFind(0x3F8, 8, out _));
    }

    [Fact]
    public void LookupAtTheTopOfTheAddressSpaceDoesNotWrap()
    {
        // The highest range a map holds ends at 2^64 - 1 (its exclusive end must be representable).
        var map = AddressRangeMap<string>.Empty.Add(ulong.MaxValue - 0x1000, 0x1000, "top");
        Assert.True(map.TryFind(ulong.MaxValue - 1, 1, out var hit));
        Assert.Equal(0xFFFUL, hit.Offset);
        Assert.False(map.TryFind(ulong.MaxValue - 1, 2, out _));
        Assert.False(map.TryFind(ulong.MaxValue, 8, out _));
    }

    [Fact]
    public void RemoveTakesOutOnlyThatRange()
    {
        var map = Map().Remove(0x3F8);
        Assert.False(map.TryFind(0x3F8, 1, out _));
        Assert.True(map.TryFind(0x2F8, 1, out _));
        Assert.Equal(3, map.Count);
        // The freed range can be claimed again.
        Assert.True(map.Add(0x3F8, 8, "com1-again").TryFind(0x3FA, 1, out var hit));
        Assert.Equal("com1-again", hit.Target);
    }

    [Fact]
    public void LookupOverManyRangesMatchesALinearScan()
    {
        var map = AddressRangeMap<int>.Empty;
        var rng = new Random(1234);
        var ranges = new List<(ulong Base, ulong Len, int Id)>();
        for (var i = 0; i < 200; i++)
        {
            var b = (ulong)rng.Next(0, 1 << 20);
            var len = (ulong)rng.Next(1, 64);
            if (ranges.Any(r => b < r.Base + r.Len && r.Base < b + len)) continue;
            map = map.Add(b, len, i);
            ranges.Add((b, len, i));
        }
        for (var probe = 0; probe < 5000; probe++)
        {
            var a = (ulong)rng.Next(0, (1 << 20) + 64);
            var size = (ulong)rng.Next(1, 9);
            var expected = ranges.Where(r => a >= r.Base && a + size <= r.Base + r.Len).Select(r => (int?)r.Id).SingleOrDefault();
            var found = map.TryFind(a, size, out var hit);
            Assert.Equal(expected.HasValue, found);
            if (found) Assert.Equal(expected, hit.Target);
        }
    }
}
