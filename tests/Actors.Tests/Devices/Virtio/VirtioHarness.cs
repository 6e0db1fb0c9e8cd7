using System.Collections.Concurrent;
using System.Diagnostics;
using Actorvisor.Actors.Devices.Virtio;
using Actorvisor.Kernel.Memory;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

/// <summary>Records what a device tells its driver.</summary>
internal sealed class FakeSignals : IVirtioSignals
{
    private readonly ConcurrentQueue<int> _used = new();
    private readonly ConcurrentQueue<string> _resets = new();
    private int _configChanges;

    public int UsedCount(int queue) => _used.Count(q => q == queue);
    public IReadOnlyCollection<string> Resets => _resets;
    public int ConfigChanges => _configChanges;

    public void UsedBuffers(int queue) => _used.Enqueue(queue);
    public void ConfigChanged() => Interlocked.Increment(ref _configChanges);
    public void NeedsReset(string reason) => _resets.Enqueue(reason);
}

/// <summary>The device owner's thread, played by the test: posted work runs when the test drains it.</summary>
internal sealed class OwnerQueue
{
    private readonly BlockingCollection<Action> _work = new();

    public void Post(Action action) => _work.Add(action);

    public void Drain()
    {
        while (_work.TryTake(out var a)) a();
    }

    /// <summary>Runs posted work until <paramref name="done"/> holds; false on timeout.</summary>
    public bool RunUntil(Func<bool> done, int timeoutMs = 5000)
    {
        var sw = Stopwatch.StartNew();
        while (!done())
        {
            if (_work.TryTake(out var a, 10)) a();
            if (sw.ElapsedMilliseconds > timeoutMs) return done();
        }
        return true;
    }
}

/// <summary>A split virtqueue laid out in guest memory the way a driver would (virtio 1.2, 2.7), with raw access for malformed cases.</summary>
internal sealed class TestRing
{
    private readonly GuestMemory _m;
    private ushort _availIdx;
    private int _nextFree;

    public TestRing(GuestMemory memory, ulong baseAddress, ushort size)
    {
        _m = memory;
        Size = size;
        Desc = baseAddress;
        Avail = Desc + 16UL * size;
        Used = (Avail + 6 + 2UL * size + 3) & ~3UL;
    }

    public ushort Size { get; }
    public ulong Desc { get; }
    public ulong Avail { get; }
    public ulong Used { get; }
    public VirtqueueLayout Layout => new(Size, Desc, Avail, Used);

    public void SetDesc(int index, ulong addr, uint len, ushort flags = 0, ushort next = 0) =>
        WriteDesc(_m, Desc + 16UL * (ulong)index, addr, len, flags, next);

    public static void WriteDesc(GuestMemory m, ulong at, ulong addr, uint len, ushort flags = 0, ushort next = 0)
    {
        m.WriteUInt64(at, addr);
        m.WriteUInt32(at + 8, len);
        m.WriteUInt16(at + 12, flags);
        m.WriteUInt16(at + 14, next);
    }

    public ushort AvailIdx
    {
        get => _availIdx;
        set { _availIdx = value; _m.WriteUInt16(Avail + 2, value); }
    }

    public ushort AvailFlags { set => _m.WriteUInt16(Avail, value); }
    public ushort UsedEvent { set => _m.WriteUInt16(Avail + 4 + 2UL * Size, value); }
    public ushort AvailEvent => _m.ReadUInt16(Used + 4 + 8UL * Size);
    public ushort UsedIdx => _m.ReadUInt16(Used + 2);

    public (uint Id, uint Len) UsedElem(int i)
    {
        var at = Used + 4 + 8UL * (ulong)(i % Size);
        return (_m.ReadUInt32(at), _m.ReadUInt32(at + 4));
    }

    /// <summary>Puts <paramref name="head"/> into the next available slot and publishes it.</summary>
    public void Publish(ushort head)
    {
        _m.WriteUInt16(Avail + 4 + 2UL * (ulong)(_availIdx % Size), head);
        AvailIdx = (ushort)(_availIdx + 1);
    }

    /// <summary>Builds a chain from free descriptors (reused round-robin), publishes it, returns its head.</summary>
    public ushort AddChain(params (ulong Addr, uint Len, bool Write)[] segments)
    {
        var indices = new int[segments.Length];
        for (var i = 0; i < segments.Length; i++) indices[i] = _nextFree++ % Size;
        for (var i = 0; i < segments.Length; i++)
        {
            var last = i == segments.Length - 1;
            var flags = (ushort)((segments[i].Write ? 2 : 0) | (last ? 0 : 1));
            SetDesc(indices[i], segments[i].Addr, segments[i].Len, flags, last ? (ushort)0 : (ushort)indices[i + 1]);
        }
        Publish((ushort)indices[0]);
        return (ushort)indices[0];
    }
}

/// <summary>A small guest, a fake transport and a bump allocator for buffers.</summary>
internal sealed class VirtioHarness : IDisposable
{
    private ulong _next = 0x100000;

    public VirtioHarness(ulong ramSize = 4 << 20) => Memory = new GuestMemory(ramSize);

    public GuestMemory Memory { get; }
    public FakeSignals Signals { get; } = new();
    public OwnerQueue Owner { get; } = new();

    public ulong Alloc(int length, int align = 16)
    {
        var at = (_next + (ulong)align - 1) & ~((ulong)align - 1);
        _next = at + (ulong)Math.Max(length, 1);
        return at;
    }

    public ulong Put(ReadOnlySpan<byte> data)
    {
        var at = Alloc(data.Length);
        Memory.Write(at, data);
        return at;
    }

    public byte[] Get(ulong at, int length)
    {
        var b = new byte[length];
        Memory.Read(at, b);
        return b;
    }

    /// <summary>Ring <paramref name="index"/> of a device, 64 KiB apart below 1 MiB.</summary>
    public TestRing Ring(int index, ushort size) => new(Memory, 0x10000UL * (ulong)(index + 1), size);

    public VirtioActivation Activation(ulong features, params TestRing?[] rings) =>
        new(Memory, features, rings.Select(r => r?.Layout).ToList(), Signals, Owner.Post);

    public void Activate(IVirtioDevice device, ulong features, params TestRing?[] rings) =>
        device.Activate(Activation(features, rings));

    public void Dispose() => Memory.Dispose();
}
