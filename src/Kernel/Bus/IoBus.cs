namespace Actorvisor.Kernel.Bus;

/// <summary>A port number on the x86 I/O bus.</summary>
public readonly record struct PioPort(ushort Value)
{
    public override string ToString() => $"0x{Value:x}";
}

/// <summary>A guest-physical MMIO address.</summary>
public readonly record struct MmioAddress(ulong Value)
{
    public override string ToString() => $"0x{Value:x}";
}

/// <summary>
/// The machine's two buses: the 64 KiB port space and the MMIO space, each a range map from addresses to
/// targets. Immutable: adding a device returns a new <see cref="IoBus{T}"/>.
/// </summary>
public sealed class IoBus<T>
{
    public AddressRangeMap<T> Pio { get; }
    public AddressRangeMap<T> Mmio { get; }

    public static readonly IoBus<T> Empty = new(AddressRangeMap<T>.Empty, AddressRangeMap<T>.Empty);

    private IoBus(AddressRangeMap<T> pio, AddressRangeMap<T> mmio) { Pio = pio; Mmio = mmio; }

    public IoBus<T> AddPio(ushort port, ushort count, T target)
    {
        if (port + count > 0x10000) throw new BusRegistrationException($"port range 0x{port:x}+{count} leaves the 64 KiB I/O space");
        return new(Pio.Add(port, count, target), Mmio);
    }

    public IoBus<T> AddMmio(ulong address, ulong length, T target) => new(Pio, Mmio.Add(address, length, target));
}
