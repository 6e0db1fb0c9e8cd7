namespace Actorvisor.Kernel.Bus;

/// <summary>A device's claim on an address range: [Base, Base + Length).</summary>
public readonly record struct BusRange(ulong Base, ulong Length)
{
    public ulong End => Base + Length; // exclusive; registration rejects overflow
    public bool Overlaps(BusRange o) => Base < o.End && o.Base < End;
    public override string ToString() => $"[0x{Base:x}, 0x{End:x})";
}

/// <summary>Where an access landed: the target and the offset of the access inside its range.</summary>
public readonly record struct BusHit<T>(T Target, ulong Base, ulong Offset);

/// <summary>
/// An immutable sorted map of address ranges to targets (devices). Registration returns a new map and
/// refuses zero-length, overflowing and overlapping ranges. Lookup is a floor binary search followed by
/// a check that the whole access fits in the range, as rust-vmm's vm-device does. Readers on vCPU
/// threads hold one snapshot; a BAR move publishes a new one.
/// </summary>
public sealed class AddressRangeMap<T>
{
    private readonly BusRange[] _ranges;
    private readonly T[] _targets;

    public static readonly AddressRangeMap<T> Empty = new([], []);

    private AddressRangeMap(BusRange[] ranges, T[] targets)
    {
        _ranges = ranges;
        _targets = targets;
    }

    public int Count => _ranges.Length;
    public IEnumerable<(BusRange Range, T Target)> Entries => _ranges.Select((r, i) => (r, _targets[i]));

    public AddressRangeMap<T> Add(ulong baseAddress, ulong length, T target)
    {
        if (length == 0) throw new BusRegistrationException($"zero-length range at 0x{baseAddress:x}");
        if (baseAddress + length < baseAddress) throw new BusRegistrationException($"range at 0x{baseAddress:x}+0x{length:x} overflows");
        var range = new BusRange(baseAddress, length);
        var idx = 0;
        while (idx < _ranges.Length && _ranges[idx].Base < baseAddress) idx++;
        if (idx > 0 && _ranges[idx - 1].Overlaps(range))
            throw new BusRegistrationException($"range {range} overlaps {_ranges[idx - 1]} ({_targets[idx - 1]})");
        if (idx < _ranges.Length && _ranges[idx].Overlaps(range))
            throw new BusRegistrationException($"range {range} overlaps {_ranges[idx]} ({_targets[idx]})");
        var ranges = new BusRange[_ranges.Length + 1];
        var targets = new T[_ranges.Length + 1];
        Array.Copy(_ranges, ranges, idx);
        Array.Copy(_targets, targets, idx);
        ranges[idx] = range;
        targets[idx] = target;
        Array.Copy(_ranges, idx, ranges, idx + 1, _ranges.Length - idx);
        Array.Copy(_targets, idx, targets, idx + 1, _ranges.Length - idx);
        return new AddressRangeMap<T>(ranges, targets);
    }

    public AddressRangeMap<T> Remove(ulong baseAddress)
    {
        var idx = Array.FindIndex(_ranges, r => r.Base == baseAddress);
        if (idx < 0) return this;
        var ranges = _ranges.Where((_, i) => i != idx).ToArray();
        var targets = _targets.Where((_, i) => i != idx).ToArray();
        return new AddressRangeMap<T>(ranges, targets);
    }

    /// <summary>Finds the range holding all of [address, address + size).</summary>
    public bool TryFind(ulong address, ulong size, out BusHit<T> hit)
    {
        int lo = 0, hi = _ranges.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >> 1;
            if (_ranges[mid].Base <= address) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        if (found >= 0)
        {
            var r = _ranges[found];
            var offset = address - r.Base;
            if (offset < r.Length && size <= r.Length - offset)
            {
                hit = new BusHit<T>(_targets[found], r.Base, offset);
                return true;
            }
        }
        hit = default;
        return false;
    }
}

public sealed class BusRegistrationException(string message) : Exception(message);
