using Actorvisor.Kernel.Bus;

namespace Actorvisor.Actors.Devices.Pci.Host;

/// <summary>
/// Which function BAR answers an I/O or memory address now: rebuilt from every function's current decodes
/// whenever one changes. A guest that programs two BARs to overlap gets the first (lower bus/device/function)
/// and the other is not reached, as on a real bus where two decoders would collide; nothing throws.
/// </summary>
public sealed class PciDecodeMap
{
    private readonly Dictionary<PciAddress, IReadOnlyList<PciBarDecode>> _byFunction = new();
    private AddressRangeMap<(PciAddress Function, int Bar)> _io = AddressRangeMap<(PciAddress, int)>.Empty;
    private AddressRangeMap<(PciAddress Function, int Bar)> _memory = AddressRangeMap<(PciAddress, int)>.Empty;

    public void Set(PciAddress function, IReadOnlyList<PciBarDecode> bars)
    {
        _byFunction[function] = bars;
        var io = AddressRangeMap<(PciAddress, int)>.Empty;
        var memory = AddressRangeMap<(PciAddress, int)>.Empty;
        foreach (var (f, decodes) in _byFunction.OrderBy(e => e.Key.Bus).ThenBy(e => e.Key.DevFn))
            foreach (var d in decodes)
            {
                try
                {
                    if (d.Io) io = io.Add(d.Base, d.Size, (f, d.Bar));
                    else memory = memory.Add(d.Base, d.Size, (f, d.Bar));
                }
                catch (BusRegistrationException)
                {
                    // Overlaps another decode: unreachable while it does.
                }
            }
        _io = io;
        _memory = memory;
    }

    public IReadOnlyList<PciBarDecode> Of(PciAddress function) => _byFunction.GetValueOrDefault(function) ?? [];

    public bool TryFind(bool io, ulong address, int size, out PciAddress function, out int bar, out ulong offset)
    {
        if ((io ? _io : _memory).TryFind(address, (ulong)size, out var hit))
        {
            (function, bar) = hit.Target;
            offset = hit.Offset;
            return true;
        }
        (function, bar, offset) = (default, -1, 0);
        return false;
    }
}
