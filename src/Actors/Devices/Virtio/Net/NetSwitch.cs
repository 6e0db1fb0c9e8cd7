namespace Actorvisor.Actors.Devices.Virtio.Net;

/// <summary>
/// An in-process Ethernet switch connecting the NICs of one process: it learns which port each source MAC sits
/// behind, forwards unicast frames to the port that owns their destination, and floods broadcast, multicast and
/// unknown destinations to every other port. Each port hands frames to its device through the device's own Post,
/// so the only state shared between devices is the MAC table, under a lock.
/// </summary>
public sealed class NetSwitch
{
    /// <summary>Bounded so a guest sending from random source MACs cannot grow it without limit.</summary>
    public const int MaxTableEntries = 4096;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, NetSwitch> Named = new(StringComparer.Ordinal);

    /// <summary>The process-wide switch called <paramref name="name"/>: NICs of different VMs that name the same switch meet on it.</summary>
    public static NetSwitch Shared(string name) => Named.GetOrAdd(name, _ => new NetSwitch());

    private readonly object _lock = new();
    private readonly List<Port> _ports = [];
    private readonly Dictionary<ulong, Port> _table = [];

    public INetBackend CreatePort()
    {
        var port = new Port(this);
        lock (_lock) _ports.Add(port);
        return port;
    }

    public int PortCount { get { lock (_lock) return _ports.Count; } }

    private void Forward(Port from, byte[] frame)
    {
        if (frame.Length < 14) return;
        var dst = Mac(frame, 0);
        var src = Mac(frame, 6);
        Port[] targets;
        lock (_lock)
        {
            if (!IsGroup(src))
            {
                if (_table.Count >= MaxTableEntries && !_table.ContainsKey(src)) _table.Clear();
                _table[src] = from;
            }
            if (!IsGroup(dst) && _table.TryGetValue(dst, out var to))
                targets = to == from ? [] : [to];
            else
                targets = _ports.Where(p => p != from).ToArray();
        }
        foreach (var t in targets) t.Deliver(frame);
    }

    private void Remove(Port port)
    {
        lock (_lock)
        {
            _ports.Remove(port);
            foreach (var key in _table.Where(e => e.Value == port).Select(e => e.Key).ToList()) _table.Remove(key);
        }
    }

    private static ulong Mac(byte[] frame, int offset)
    {
        ulong v = 0;
        for (var i = 0; i < 6; i++) v = (v << 8) | frame[offset + i];
        return v;
    }

    /// <summary>The group bit (I/G) of the first octet: broadcast and multicast.</summary>
    private static bool IsGroup(ulong mac) => (mac & (1UL << 40)) != 0;

    private sealed class Port(NetSwitch owner) : INetBackend
    {
        private volatile Action<byte[]>? _receive;

        public void Start(Action<byte[]> receive) => _receive = receive;

        public void Send(ReadOnlySpan<byte> frame) => owner.Forward(this, frame.ToArray());

        public void Deliver(byte[] frame) => _receive?.Invoke(frame);

        public void Dispose()
        {
            _receive = null;
            owner.Remove(this);
        }
    }
}
