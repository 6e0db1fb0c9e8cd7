using System.Buffers.Binary;
using System.Diagnostics;
using Actorvisor.Actors.Devices.Virtio;
using Actorvisor.Actors.Devices.Virtio.Blk;
using Actorvisor.Actors.Devices.Virtio.Console;
using Actorvisor.Actors.Devices.Virtio.Net;
using Actorvisor.Actors.Devices.Virtio.Queue;
using Actorvisor.Actors.Devices.Virtio.Rng;
using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

/// <summary>
/// A seeded random driver over each virtio device: random and malformed ring layouts, descriptor tables, indirect
/// tables, available indices, configuration accesses, resets and notifications, within a small CI budget. Nothing
/// may escape a device as an exception (or crash the test host), a device that reported NEEDS_RESET must be broken,
/// and a chain with a loop must always end in NEEDS_RESET. VIRTIO_FUZZ_SEED and VIRTIO_FUZZ_MS override the seed
/// and the per-device time budget to reproduce or extend a run.
/// </summary>
public sealed class VirtioFuzzTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("rng")]
    [InlineData("blk")]
    [InlineData("blk-sync")]
    [InlineData("console")]
    [InlineData("net")]
    public void Random_rings_and_chains_never_escape_the_device(string kind)
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("VIRTIO_FUZZ_SEED"), out var s) ? s : kind.Aggregate(0x5eed, (h, c) => (h * 31 + c) & 0xfffff);
        var budget = int.TryParse(Environment.GetEnvironmentVariable("VIRTIO_FUZZ_MS"), out var ms) ? ms : 1200;
        using var fuzz = new VirtioFuzzer(kind, seed);
        var stats = fuzz.Run(TimeSpan.FromMilliseconds(budget));
        output.WriteLine($"{kind}: seed {seed}, {stats}");
        Assert.True(stats.Steps > 1000, $"only {stats.Steps} steps");
        Assert.True(stats.LoopsCaught > 10, "too few deliberate loops tried");
        Assert.True(stats.Completed > 0, "no request ever completed: the random driver never got deep");
        // Every reset must come from a rule the driver broke, never from a device bug caught by the last-resort guard.
        Assert.Empty(fuzz.InternalErrors);
    }
}

internal sealed record FuzzStats(long Steps, long Notifies, long Resets, long LoopsCaught, long Completed)
{
    public override string ToString() => $"{Steps} steps, {Notifies} notifies, {Resets} NEEDS_RESET, {LoopsCaught} loops caught, {Completed} used elements";
}

internal sealed class VirtioFuzzer : IDisposable
{
    private const ulong BufferArea = 0x100000, BufferAreaSize = 0x200000;
    private readonly Random _r;
    private readonly VirtioHarness _h = new();
    private readonly VirtioDeviceBase _device;
    private readonly string? _image;
    private readonly FuzzConsoleBackend? _console;
    private TestRing?[] _rings = [];
    private long _steps, _notifies, _loops, _completed;
    private int _resetsAtActivation;

    private const ulong ScratchStart = 0x300000, ScratchEnd = 0x3f0000;
    private ulong _scratch = ScratchStart;

    /// <summary>Room for request headers and indirect tables, reused round-robin so long runs stay inside the small guest.</summary>
    private ulong Scratch(int length)
    {
        if (_scratch + (ulong)length > ScratchEnd) _scratch = ScratchStart;
        var at = _scratch;
        _scratch = (_scratch + (ulong)length + 15) & ~15UL;
        return at;
    }

    private ulong Put(ReadOnlySpan<byte> data)
    {
        var at = Scratch(data.Length);
        _h.Memory.Write(at, data);
        return at;
    }

    public VirtioFuzzer(string kind, int seed)
    {
        _r = new Random(seed);
        switch (kind)
        {
            case "rng": _device = new VirtioRng(); break;
            case "blk" or "blk-sync":
                _image = Path.Combine(Path.GetTempPath(), $"virtio-fuzz-{Guid.NewGuid():N}.img");
                File.WriteAllBytes(_image, new byte[256 << 10]);
                _device = new VirtioBlk(new VirtioBlkOptions(_image, QueueSize: 64, SynchronousIo: kind == "blk-sync"));
                break;
            case "console": _device = new VirtioConsole(_console = new FuzzConsoleBackend()); break;
            case "net": _device = new VirtioNet(new EchoBackend(), [2, 0, 0, 0, 0, 1], 64); break;
            default: throw new ArgumentException(kind);
        }
    }

    public IReadOnlyList<string> InternalErrors => _h.Signals.Resets.Where(r => r.StartsWith("device error", StringComparison.Ordinal)).Distinct().ToList();

    public FuzzStats Run(TimeSpan budget)
    {
        var sw = Stopwatch.StartNew();
        Activate(validOnly: true);
        while (sw.Elapsed < budget)
        {
            Step();
            _steps++;
            if (_h.Signals.Resets.Count > _resetsAtActivation && (!_device.IsBroken || _device.IsLive))
                throw new InvalidOperationException("a device reported NEEDS_RESET but keeps processing");
        }
        _h.Owner.Drain();
        CountCompleted();
        return new FuzzStats(_steps, _notifies, _h.Signals.Resets.Count, _loops, _completed);
    }

    private void Step()
    {
        var op = _r.Next(100);
        if (op < 2) { _device.Reset(); Activate(validOnly: _r.Next(4) != 0); }
        else if (op < 4) DeliberateLoop();
        else if (op < 20) RandomDescriptor();
        else if (op < 28) PublishRandom();
        else if (op < 30) if (Ring() is { } ring) ring.AvailIdx = (ushort)_r.Next(65536); else { }
        else if (op < 50) PlausibleChain();
        else if (op < 55) IndirectChain();
        else if (op < 75) Notify(_r.Next(-1, _device.QueueCount + 2));
        else if (op < 82) Config();
        else if (op < 86) Scribble();
        else if (op < 90) { if (Ring() is { } ring) { ring.UsedEvent = (ushort)_r.Next(65536); ring.AvailFlags = (ushort)_r.Next(4); } }
        else if (op < 93) _console?.Input?.Push(RandomBytes(_r.Next(1, 300)));
        else _h.Owner.Drain();
    }

    /// <summary>Used elements the device published on the current rings (they start from zero at each activation).</summary>
    private void CountCompleted() => _completed += _rings.Where(r => r is not null).Sum(r => (long)r!.UsedIdx);

    private void Activate(bool validOnly)
    {
        CountCompleted();
        _rings = new TestRing?[_device.QueueCount];
        var layouts = new VirtqueueLayout?[_device.QueueCount];
        for (var i = 0; i < _rings.Length; i++)
        {
            var max = _device.MaxQueueSize(i);
            var size = (ushort)(1 << _r.Next(0, (int)Math.Log2(max) + 1));
            _rings[i] = _h.Ring(i, size);
            layouts[i] = _rings[i]!.Layout;
            // Start from clean rings so avail/used indices agree with a fresh device.
            _h.Memory.Write(_rings[i]!.Desc, new byte[0x10000]);
            if (!validOnly && _r.Next(5) == 0)
                layouts[i] = new VirtqueueLayout((ushort)_r.Next(65536), RandomAddress(), RandomAddress(), RandomAddress());
            else if (!validOnly && _r.Next(10) == 0)
                layouts[i] = null;
        }
        _resetsAtActivation = _h.Signals.Resets.Count;
        var features = _device.OfferedFeatures & (validOnly ? ulong.MaxValue : (ulong)_r.NextInt64());
        _device.Activate(new VirtioActivation(_h.Memory, features | VirtioFeatures.Version1, layouts, _h.Signals, _h.Owner.Post));
    }

    private TestRing? Ring() => _rings.Length == 0 ? null : _rings[_r.Next(_rings.Length)];

    /// <summary>Mostly inside guest RAM, sometimes near its end, sometimes anywhere.</summary>
    private ulong RandomAddress() => _r.Next(10) switch
    {
        < 7 => BufferArea + (ulong)_r.NextInt64((long)BufferAreaSize),
        7 => _h.Memory.TopOfRam - (ulong)_r.Next(0, 64),
        8 => (ulong)_r.NextInt64(),
        _ => ulong.MaxValue - (ulong)_r.Next(0, 4096),
    };

    private uint RandomLength() => _r.Next(10) switch
    {
        < 6 => (uint)_r.Next(0, 4096),
        6 => (uint)_r.Next(0, 64),
        7 => (uint)_r.Next(0, 1 << 20),
        8 => uint.MaxValue - (uint)_r.Next(0, 16),
        _ => (uint)_r.NextInt64(0, uint.MaxValue + 1L),
    };

    private byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        _r.NextBytes(b);
        return b;
    }

    private void RandomDescriptor()
    {
        if (Ring() is not { } ring) return;
        ring.SetDesc(_r.Next(ring.Size), RandomAddress(), RandomLength(), (ushort)_r.Next(8), (ushort)(_r.Next(3) == 0 ? _r.Next(65536) : _r.Next(ring.Size)));
    }

    private void PublishRandom()
    {
        if (Ring() is not { } ring) return;
        ring.Publish((ushort)(_r.Next(8) == 0 ? _r.Next(65536) : _r.Next(ring.Size)));
    }

    private void Notify(int queue)
    {
        _notifies++;
        _device.Notify(queue);
        if (_r.Next(3) == 0) _h.Owner.Drain();
    }

    private void Config()
    {
        var offset = _r.Next(-4, _device.ConfigSize + 8);
        if (_r.Next(2) == 0) _device.ReadConfig(offset);
        else _device.WriteConfig(offset, (byte)_r.Next(256));
    }

    private void Scribble()
    {
        var at = BufferArea + (ulong)_r.NextInt64((long)BufferAreaSize - 64);
        _h.Memory.Write(at, RandomBytes(_r.Next(1, 64)));
    }

    /// <summary>A chain shaped like a real request for this device, with plausible and edge-case contents.</summary>
    private void PlausibleChain()
    {
        if (Ring() is not { } ring) return;
        var segments = new List<(ulong, uint, bool)>();
        var readable = _r.Next(0, 4);
        var writable = _r.Next(0, 4);
        if (_device is VirtioBlk)
        {
            var h = new byte[16];
            uint[] types = [0, 1, 4, 8, 11, 13, 14, (uint)_r.Next()];
            BinaryPrimitives.WriteUInt32LittleEndian(h, types[_r.Next(types.Length)]);
            BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), _r.Next(3) == 0 ? (ulong)_r.NextInt64() : (ulong)_r.Next(0, 520));
            segments.Add((Put(h), (uint)_r.Next(12, 17), false));
            if (_r.Next(3) == 0)
            {
                var range = new byte[16];
                BinaryPrimitives.WriteUInt64LittleEndian(range, (ulong)_r.Next(0, 520));
                BinaryPrimitives.WriteUInt32LittleEndian(range.AsSpan(8), (uint)_r.Next(0, 64));
                BinaryPrimitives.WriteUInt32LittleEndian(range.AsSpan(12), (uint)_r.Next(0, 3));
                segments.Add((Put(range), 16, false));
            }
        }
        for (var i = 0; i < readable; i++) segments.Add((BufferArea + (ulong)_r.Next(0, 0x1f0000), (uint)(_r.Next(4) == 0 ? _r.Next(0, 100) : 512 * _r.Next(0, 3)), false));
        for (var i = 0; i < writable; i++) segments.Add((BufferArea + (ulong)_r.Next(0, 0x1f0000), (uint)(_r.Next(4) == 0 ? _r.Next(0, 100) : 512 * _r.Next(0, 3)), true));
        if (_device is VirtioBlk && _r.Next(4) != 0) segments.Add((BufferArea + (ulong)_r.Next(0, 0x1f0000), 1, true));
        if (_device is VirtioNet) segments.Insert(0, (Put(new byte[12]), 12, false));
        if (segments.Count == 0 || segments.Count > ring.Size) return;
        ring.AddChain([.. segments]);
    }

    private void IndirectChain()
    {
        if (Ring() is not { } ring) return;
        var entries = _r.Next(1, 20);
        var table = Scratch(16 * entries);
        for (var i = 0; i < entries; i++)
        {
            var flags = (ushort)(_r.Next(4) == 0 ? _r.Next(8) : (i < entries - 1 ? 1 : 0) | (i >= entries / 2 ? 2 : 0));
            var addr = _r.Next(5) == 0 ? RandomAddress() : BufferArea + (ulong)_r.Next(0, 0x1f0000);
            TestRing.WriteDesc(_h.Memory, table, addr, (uint)_r.Next(0, 600), flags, (ushort)(_r.Next(5) == 0 ? _r.Next(65536) : i + 1));
            table += 16;
        }
        table -= 16UL * (ulong)entries;
        var len = _r.Next(6) == 0 ? (uint)_r.Next(0, 400) : 16u * (uint)entries;
        var slot = _r.Next(ring.Size);
        ring.SetDesc(slot, table, len, (ushort)(Virtqueue.DescIndirect | (_r.Next(8) == 0 ? Virtqueue.DescNext : 0)));
        ring.Publish((ushort)slot);
    }

    /// <summary>On a fresh, valid activation, a loop as the first chain of the consuming queue must end in NEEDS_RESET.</summary>
    private void DeliberateLoop()
    {
        _h.Owner.Drain();
        _device.Reset();
        Activate(validOnly: true);
        var queue = _device switch { VirtioConsole => VirtioConsole.TransmitQueue, VirtioNet => VirtioNet.TransmitQueue, _ => 0 };
        var ring = _rings[queue]!;
        var before = _h.Signals.Resets.Count;
        var a = (ushort)_r.Next(ring.Size);
        var b = (ushort)_r.Next(ring.Size);
        ring.SetDesc(a, BufferArea, 16, Virtqueue.DescNext, b);
        ring.SetDesc(b, BufferArea + 64, 16, Virtqueue.DescNext, a);
        ring.Publish(a);
        _device.Notify(queue);
        if (_h.Signals.Resets.Count != before + 1 || !_device.IsBroken)
            throw new InvalidOperationException($"a loop {a}->{b}->{a} in a {ring.Size}-entry queue did not end in NEEDS_RESET");
        _loops++;
    }

    public void Dispose()
    {
        _device.Dispose();
        _h.Dispose();
        if (_image is not null) File.Delete(_image);
    }

    private sealed class FuzzConsoleBackend : IConsoleBackend
    {
        public ConsoleInput? Input { get; private set; }
        public void Start(ConsoleInput input) => Input = input;
        public void Write(ReadOnlySpan<byte> data) { }
        public void Dispose() { }
    }

    /// <summary>Sends every frame straight back, so the receive path runs too.</summary>
    private sealed class EchoBackend : INetBackend
    {
        private Action<byte[]>? _receive;
        public void Start(Action<byte[]> receive) => _receive = receive;
        public void Send(ReadOnlySpan<byte> frame) => _receive?.Invoke(frame.ToArray());
        public void Dispose() { }
    }
}
