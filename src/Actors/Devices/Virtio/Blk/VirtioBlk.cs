using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Actorvisor.Actors.Devices.Virtio.Queue;
using static Actorvisor.Actors.Devices.Virtio.Blk.BlkSpec;

namespace Actorvisor.Actors.Devices.Virtio.Blk;

/// <summary>
/// virtio-blk on a raw image file (virtio 1.2, section 5.2): IN, OUT, FLUSH, GET_ID, and DISCARD / WRITE_ZEROES.
/// A request's guest buffers are copied on the owner's thread; the file I/O runs on the disk's I/O thread with host
/// buffers only, and its result comes back through the activation's Post, so the I/O thread never touches guest
/// memory or the rings. A request the guest frames wrongly (no header, no status byte) breaks the device; one that
/// is well framed but wrong (beyond the capacity, a write to a read-only disk, an unknown type) gets a status.
/// </summary>
public sealed class VirtioBlk : VirtioDeviceBase
{
    public const int RequestQueue = 0;
    /// <summary>Largest data transfer per request; Linux's default limit is 1.25 MiB.</summary>
    public const int MaxTransferBytes = 32 << 20;
    public const uint MaxRangeSectors = 1 << 22;
    public const uint MaxRanges = 16;
    public const uint SizeMax = 1 << 20;

    private readonly VirtioBlkOptions _options;
    private readonly BlockImage _image;
    private IBlockFaultPoint _faults;
    private readonly BlockIoWorker? _worker;
    private readonly byte[] _config = new byte[ConfigLength];
    private readonly byte[] _serial;

    public VirtioBlk(VirtioBlkOptions options)
    {
        _options = options;
        _image = new BlockImage(options.Path, options.ReadOnly);
        _faults = options.Faults ?? NoBlockFaults.Instance;
        if (!options.SynchronousIo) _worker = new BlockIoWorker($"virtio-blk {System.IO.Path.GetFileName(options.Path)}");
        _serial = Encoding.ASCII.GetBytes(options.Serial ?? System.IO.Path.GetFileName(options.Path));
        if (_serial.Length > IdBytes) _serial = _serial[..IdBytes];
        Capacity = (ulong)_image.Length / SectorSize;

        var c = _config.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(c[ConfigCapacity..], Capacity);
        BinaryPrimitives.WriteUInt32LittleEndian(c[ConfigSizeMax..], SizeMax);
        BinaryPrimitives.WriteUInt32LittleEndian(c[ConfigSegMax..], (uint)Math.Max(1, options.QueueSize - 2));
        BinaryPrimitives.WriteUInt32LittleEndian(c[ConfigBlkSize..], SectorSize);
        BinaryPrimitives.WriteUInt16LittleEndian(c[ConfigNumQueues..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(c[ConfigMaxDiscardSectors..], MaxRangeSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[ConfigMaxDiscardSeg..], MaxRanges);
        BinaryPrimitives.WriteUInt32LittleEndian(c[ConfigDiscardAlignment..], 4096 / SectorSize);
        BinaryPrimitives.WriteUInt32LittleEndian(c[ConfigMaxWriteZeroesSectors..], MaxRangeSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(c[ConfigMaxWriteZeroesSeg..], MaxRanges);
        c[ConfigWriteZeroesMayUnmap] = (byte)(_image.CanPunchHoles ? 1 : 0);

        OfferedFeatures = VirtioFeatures.QueueCore | FeatureSizeMax | FeatureSegMax | FeatureBlkSize | FeatureFlush
            | (options.ReadOnly ? FeatureReadOnly : FeatureWriteZeroes)
            | (_image.CanPunchHoles ? FeatureDiscard : 0);
    }

    /// <summary>The fault point asked per request (the VM's fault engine when it has one); set before the guest runs.</summary>
    public IBlockFaultPoint Faults
    {
        get => _faults;
        set => _faults = value ?? NoBlockFaults.Instance;
    }

    /// <summary>File I/O runs inline on the owner's thread (the `sync` option; the deterministic schedule's choice).</summary>
    public bool IsSynchronous => _worker is null;

    /// <summary>Capacity in 512-byte sectors (the image's length rounded down).</summary>
    public ulong Capacity { get; }
    public int InFlight { get; private set; }

    public override int DeviceId => 2;
    public override ulong OfferedFeatures { get; }
    public override int QueueCount => 1;
    public override ushort MaxQueueSize(int queue) => _options.QueueSize;
    public override int ConfigSize => ConfigLength;
    public override byte ReadConfig(int offset) => (uint)offset < ConfigLength ? _config[offset] : (byte)0;
    public override void WriteConfig(int offset, byte value) { } // writeback (CONFIG_WCE) is not offered: all read-only

    protected override void OnReset() => InFlight = 0;

    protected override void OnNotify(int queue)
    {
        var q = Queue(RequestQueue)!;
        while (q.Pop() is { } chain) Submit(chain);
        SignalUsed(RequestQueue);
    }

    private void Submit(DescriptorChain chain)
    {
        if (chain.ReadableLength < HeaderSize || chain.WritableLength < 1)
            throw new VirtioProtocolException($"block request without a header or status byte ({chain.ReadableLength} readable, {chain.WritableLength} writable bytes)");
        Span<byte> header = stackalloc byte[HeaderSize];
        chain.ReadFrom(Memory, 0, header);
        var type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        var sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        var outBytes = chain.ReadableLength - HeaderSize;
        var inBytes = chain.WritableLength - 1;

        switch (type)
        {
            case TypeIn: Transfer(chain, write: false, sector, inBytes); break;
            case TypeOut: Transfer(chain, write: true, sector, outBytes); break;
            case TypeFlush:
                if (FaultAnswer(chain, _faults.Decide(new BlockRequest(BlockRequestKind.Flush, 0, 0)))) break;
                Run(chain, 0, () => { _image.Flush(); return StatusOk; });
                break;
            case TypeGetId: GetId(chain, inBytes); break;
            case TypeDiscard when (Features & FeatureDiscard) != 0: Ranges(chain, discard: true, outBytes); break;
            case TypeWriteZeroes when (Features & FeatureWriteZeroes) != 0: Ranges(chain, discard: false, outBytes); break;
            default: Finish(chain, StatusUnsupported, 0); break;
        }
    }

    private bool InRange(ulong sector, ulong sectors) => sector <= Capacity && sectors <= Capacity - sector;

    private void Transfer(DescriptorChain chain, bool write, ulong sector, uint bytes)
    {
        var kind = write ? BlockRequestKind.Write : BlockRequestKind.Read;
        if ((write && _image.ReadOnly) || bytes % SectorSize != 0 || bytes > MaxTransferBytes || !InRange(sector, bytes / SectorSize))
        {
            Finish(chain, StatusIoError, 0);
            return;
        }
        var fault = _faults.Decide(new BlockRequest(kind, sector, bytes));
        if (write && fault.Kind == BlockFaultKind.Crash && fault.TransferBytes > 0)
        {
            // A torn write: the first bytes reach the disk before the device dies (inline, so they land first).
            var torn = new byte[Math.Min(fault.TransferBytes, bytes)];
            chain.ReadFrom(Memory, HeaderSize, torn);
            _image.Write((long)sector * SectorSize, torn);
        }
        if (FaultAnswer(chain, fault)) return;
        var moved = fault.Kind == BlockFaultKind.ShortTransfer ? Math.Min(fault.TransferBytes, bytes) : bytes;
        var status = fault.Kind == BlockFaultKind.ShortTransfer ? StatusIoError : StatusOk;
        var offset = (long)sector * SectorSize;
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(moved, 1));

        if (write)
        {
            chain.ReadFrom(Memory, HeaderSize, buffer.AsSpan(0, (int)moved));
            Run(chain, 0, () =>
            {
                try { _image.Write(offset, buffer.AsSpan(0, (int)moved)); }
                finally { ArrayPool<byte>.Shared.Return(buffer); }
                return status;
            });
        }
        else
        {
            Run(chain, moved, () => { _image.Read(offset, buffer.AsSpan(0, (int)moved)); return status; },
                ok => { if (ok) chain.WriteTo(Memory, 0, buffer.AsSpan(0, (int)moved)); ArrayPool<byte>.Shared.Return(buffer); });
        }
    }

    private void GetId(DescriptorChain chain, uint bytes)
    {
        if (FaultAnswer(chain, _faults.Decide(new BlockRequest(BlockRequestKind.GetId, 0, bytes)))) return;
        var n = (int)Math.Min(bytes, IdBytes);
        Span<byte> id = stackalloc byte[IdBytes];
        id.Clear();
        _serial.CopyTo(id);
        chain.WriteTo(Memory, 0, id[..n]);
        Finish(chain, StatusOk, (uint)n);
    }

    private void Ranges(DescriptorChain chain, bool discard, uint bytes)
    {
        if (_image.ReadOnly) { Finish(chain, StatusIoError, 0); return; }
        if (bytes == 0 || bytes % RangeSize != 0 || bytes / RangeSize > MaxRanges) { Finish(chain, StatusUnsupported, 0); return; }
        var raw = new byte[bytes];
        chain.ReadFrom(Memory, HeaderSize, raw);
        var ranges = new (long Offset, long Length, bool Unmap)[bytes / RangeSize];
        ulong first = ulong.MaxValue, total = 0;
        for (var i = 0; i < ranges.Length; i++)
        {
            var r = raw.AsSpan(i * RangeSize, RangeSize);
            var sector = BinaryPrimitives.ReadUInt64LittleEndian(r);
            var count = BinaryPrimitives.ReadUInt32LittleEndian(r[8..]);
            var flags = BinaryPrimitives.ReadUInt32LittleEndian(r[12..]);
            // 5.2.6.2: reserved flag bits, or unmap on a discard, are unsupported.
            if ((flags & ~RangeFlagUnmap) != 0 || (discard && flags != 0)) { Finish(chain, StatusUnsupported, 0); return; }
            if (count > MaxRangeSectors || !InRange(sector, count)) { Finish(chain, StatusIoError, 0); return; }
            ranges[i] = ((long)sector * SectorSize, (long)count * SectorSize, (flags & RangeFlagUnmap) != 0);
            first = Math.Min(first, sector);
            total += count;
        }
        var request = new BlockRequest(discard ? BlockRequestKind.Discard : BlockRequestKind.WriteZeroes, first, (uint)Math.Min(total * SectorSize, uint.MaxValue));
        if (FaultAnswer(chain, _faults.Decide(request))) return;
        Run(chain, 0, () =>
        {
            foreach (var (offset, length, unmap) in ranges)
            {
                if (length == 0) continue;
                if (discard || (unmap && _image.CanPunchHoles)) _image.PunchHole(offset, length);
                else _image.WriteZeroes(offset, length);
            }
            return StatusOk;
        });
    }

    /// <summary>Answers a request the fault point failed outright; true if it did.</summary>
    private bool FaultAnswer(DescriptorChain chain, BlockFault fault)
    {
        switch (fault.Kind)
        {
            case BlockFaultKind.IoError: Finish(chain, StatusIoError, 0); return true;
            case BlockFaultKind.Unsupported: Finish(chain, StatusUnsupported, 0); return true;
            case BlockFaultKind.Crash: throw new InjectedDeviceCrashException($"injected crash with {fault.TransferBytes} bytes written");
            default: return false;
        }
    }

    /// <summary>
    /// Runs <paramref name="io"/> on the I/O thread (or inline), then on the owner's thread hands whether it succeeded
    /// to <paramref name="after"/> and completes the request, with <paramref name="dataBytes"/> written before the
    /// status byte if it succeeded. A host I/O error is the guest's IOERR.
    /// </summary>
    private void Run(DescriptorChain chain, uint dataBytes, Func<byte> io, Action<bool>? after = null)
    {
        InFlight++;
        if (_worker is null)
        {
            var (status, ok) = Execute(io);
            Complete(chain, dataBytes, status, ok, after);
            return;
        }
        var post = CaptureOwner();
        _worker.Enqueue(() =>
        {
            var (status, ok) = Execute(io);
            post(() =>
            {
                Complete(chain, dataBytes, status, ok, after);
                SignalUsed(RequestQueue);
            });
        });
    }

    private static (byte Status, bool Ok) Execute(Func<byte> io)
    {
        try { return (io(), true); }
        catch (Exception) { return (StatusIoError, false); }
    }

    private void Complete(DescriptorChain chain, uint dataBytes, byte status, bool ok, Action<bool>? after)
    {
        InFlight--;
        after?.Invoke(ok);
        Finish(chain, status, ok ? dataBytes : 0);
    }

    /// <summary>Writes the status byte after the data and returns the chain to the driver.</summary>
    private void Finish(DescriptorChain chain, byte status, uint dataWritten)
    {
        chain.WriteTo(Memory, chain.WritableLength - 1, [status]);
        Complete(RequestQueue, chain, dataWritten + 1);
    }

    protected override void Dispose(bool disposing)
    {
        if (!disposing) return;
        _worker?.Dispose();
        _image.Dispose();
    }
}
