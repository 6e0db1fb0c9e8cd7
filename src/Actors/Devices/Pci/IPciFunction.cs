namespace Actorvisor.Actors.Devices.Pci;

/// <summary>
/// What a PCI function model offers its actor: its configuration space, configuration reads and writes (where
/// a function reacts to a write: MSI-X enable, PIRQ routes ...), and accesses to its BARs by BAR index and
/// offset (a function never learns where its BARs are). A plain model: one owner calls it.
/// </summary>
public interface IPciFunction
{
    PciConfigSpace Config { get; }

    /// <summary>Called once by the actor before any access, with its ways out (MSI, work posted back to it).</summary>
    void Connect(PciFunctionContext context);

    uint ReadConfig(int offset, int size);
    void WriteConfig(int offset, int size, uint value);
    ulong ReadBar(int bar, ulong offset, int size);
    void WriteBar(int bar, ulong offset, int size, ulong value);
}

/// <param name="SendMsi">Sends a message-signalled interrupt (address, data) into the interrupt fabric.</param>
/// <param name="Post">Runs an action later on the function actor's thread; safe from any thread.</param>
public sealed record PciFunctionContext(Action<ulong, uint> SendMsi, Action<Action> Post)
{
    public static readonly PciFunctionContext None = new((_, _) => { }, a => a());
}

/// <summary>A function with only a configuration space (bridges): reads and writes go to it, BARs read all ones.</summary>
public class PciFunction(PciConfigSpace config) : IPciFunction
{
    public PciConfigSpace Config { get; } = config;
    protected PciFunctionContext Context { get; private set; } = PciFunctionContext.None;

    public virtual void Connect(PciFunctionContext context) => Context = context;
    public virtual uint ReadConfig(int offset, int size) => Config.Read(offset, size);
    public virtual void WriteConfig(int offset, int size, uint value) => Config.Write(offset, size, value);
    public virtual ulong ReadBar(int bar, ulong offset, int size) => size >= 8 ? ulong.MaxValue : (1UL << 8 * size) - 1;
    public virtual void WriteBar(int bar, ulong offset, int size, ulong value) { }
}
