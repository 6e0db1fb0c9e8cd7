using System.Buffers.Binary;
using Actorvisor.Actors.Devices.Virtio.Blk;
using Actorvisor.Actors.Devices.Virtio.Queue;
using static Actorvisor.Actors.Devices.Virtio.Blk.BlkSpec;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

/// <summary>virtio-blk against a temporary raw image, data checked byte for byte (virtio 1.2, 5.2).</summary>
public sealed class VirtioBlkTests : IDisposable
{
    private const int ImageBytes = 1 << 20;
    private readonly VirtioHarness _h = new();
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"virtio-blk-{Guid.NewGuid():N}.img");
    private readonly byte[] _original = new byte[ImageBytes];
    private VirtioBlk? _blk;
    private TestRing _ring = null!;

    public VirtioBlkTests()
    {
        new Random(7).NextBytes(_original);
        File.WriteAllBytes(_path, _original);
    }

    public void Dispose()
    {
        _blk?.Dispose();
        _h.Dispose();
        File.Delete(_path);
    }

    private VirtioBlk Start(bool readOnly = false, IBlockFaultPoint? faults = null, bool sync = false, string? serial = null)
    {
        _blk = new VirtioBlk(new VirtioBlkOptions(_path, readOnly, serial, 64, faults, sync));
        _ring = _h.Ring(0, 64);
        _h.Activate(_blk, _blk.OfferedFeatures | VirtioFeatures.QueueCore, _ring);
        return _blk;
    }

    private ulong Header(uint type, ulong sector)
    {
        var h = new byte[HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), sector);
        return _h.Put(h);
    }

    /// <summary>Submits a request and waits for its completion; returns the status byte and the used length.</summary>
    private (byte Status, uint Used) Request(uint type, ulong sector, (ulong Addr, uint Len, bool Write)[] data)
    {
        var status = _h.Alloc(1);
        _h.Memory.WriteByte(status, 0xff);
        var before = _ring.UsedIdx;
        _ring.AddChain([(Header(type, sector), HeaderSize, false), .. data, (status, 1, true)]);
        _blk!.Notify(0);
        Assert.True(_h.Owner.RunUntil(() => _ring.UsedIdx != before), "request did not complete");
        return (_h.Memory.ReadByte(status), _ring.UsedElem(before).Len);
    }

    private byte[] FileBytes(long offset, int length)
    {
        using var f = File.OpenRead(_path);
        var b = new byte[length];
        f.Position = offset;
        f.ReadExactly(b);
        return b;
    }

    private static int ReadU32(VirtioBlk blk, int offset)
    {
        Span<byte> b = stackalloc byte[4];
        for (var i = 0; i < 4; i++) b[i] = blk.ReadConfig(offset + i);
        return BinaryPrimitives.ReadInt32LittleEndian(b);
    }

    [Fact]
    public void Configuration_reports_capacity_block_size_and_limits()
    {
        var blk = Start();
        Assert.Equal(2, blk.DeviceId);
        Span<byte> cap = stackalloc byte[8];
        for (var i = 0; i < 8; i++) cap[i] = blk.ReadConfig(ConfigCapacity + i);
        Assert.Equal((ulong)ImageBytes / 512, BinaryPrimitives.ReadUInt64LittleEndian(cap));
        Assert.Equal(512, ReadU32(blk, ConfigBlkSize));
        Assert.Equal(62, ReadU32(blk, ConfigSegMax));
        Assert.Equal((int)VirtioBlk.SizeMax, ReadU32(blk, ConfigSizeMax));
        Assert.Equal(0, blk.ReadConfig(ConfigLength + 10));
        var f = blk.OfferedFeatures;
        Assert.NotEqual(0UL, f & FeatureFlush);
        Assert.NotEqual(0UL, f & FeatureBlkSize);
        Assert.NotEqual(0UL, f & FeatureWriteZeroes);
        Assert.Equal(0UL, f & FeatureReadOnly);
        blk.WriteConfig(ConfigCapacity, 0); // read-only field: ignored
        Assert.Equal((byte)(ImageBytes / 512 & 0xff), blk.ReadConfig(ConfigCapacity));
    }

    [Fact]
    public void Reads_sectors_into_scattered_buffers()
    {
        Start();
        var a = _h.Alloc(512);
        var b = _h.Alloc(1024);
        var (status, used) = Request(TypeIn, 3, [(a, 512, true), (b, 1024, true)]);
        Assert.Equal(StatusOk, status);
        Assert.Equal(1536u + 1, used);
        Assert.Equal(_original.AsSpan(3 * 512, 512).ToArray(), _h.Get(a, 512));
        Assert.Equal(_original.AsSpan(4 * 512, 1024).ToArray(), _h.Get(b, 1024));
        Assert.Equal(1, _h.Signals.UsedCount(0));
    }

    [Fact]
    public void Writes_reach_the_file_and_read_back()
    {
        Start();
        var data = new byte[2048];
        new Random(1).NextBytes(data);
        var a = _h.Put(data.AsSpan(0, 100));
        var b = _h.Put(data.AsSpan(100));
        var (status, used) = Request(TypeOut, 10, [(a, 100, false), (b, 1948, false)]);
        Assert.Equal(StatusOk, status);
        Assert.Equal(1u, used);
        Assert.Equal(data, FileBytes(10 * 512, 2048));
        Assert.Equal(_original.AsSpan(9 * 512, 512).ToArray(), FileBytes(9 * 512, 512));
        Assert.Equal(_original.AsSpan(14 * 512, 512).ToArray(), FileBytes(14 * 512, 512));

        var back = _h.Alloc(2048);
        Assert.Equal(StatusOk, Request(TypeIn, 10, [(back, 2048, true)]).Status);
        Assert.Equal(data, _h.Get(back, 2048));
    }

    [Fact]
    public void A_header_split_across_descriptors_is_read_whole()
    {
        Start();
        var h = new byte[HeaderSize];
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), 7);
        var h1 = _h.Put(h.AsSpan(0, 5));
        var h2 = _h.Put(h.AsSpan(5));
        var buf = _h.Alloc(512);
        var status = _h.Alloc(1);
        _ring.AddChain((h1, 5, false), (h2, 11, false), (buf, 512, true), (status, 1, true));
        _blk!.Notify(0);
        Assert.True(_h.Owner.RunUntil(() => _ring.UsedIdx == 1));
        Assert.Equal(StatusOk, _h.Memory.ReadByte(status));
        Assert.Equal(_original.AsSpan(7 * 512, 512).ToArray(), _h.Get(buf, 512));
    }

    [Fact]
    public void Flush_and_get_id_succeed()
    {
        Start(serial: "actorvisor-disk-0123456789");
        Assert.Equal((StatusOk, 1u), Request(TypeFlush, 0, []));
        var id = _h.Alloc(IdBytes);
        var (status, used) = Request(TypeGetId, 0, [(id, IdBytes, true)]);
        Assert.Equal(StatusOk, status);
        Assert.Equal(21u, used);
        Assert.Equal("actorvisor-disk-0123"u8.ToArray(), _h.Get(id, IdBytes));
    }

    [Fact]
    public void Get_id_defaults_to_the_file_name_padded_with_zeros()
    {
        Start();
        var id = _h.Alloc(IdBytes);
        Request(TypeGetId, 0, [(id, IdBytes, true)]);
        var expected = new byte[IdBytes];
        System.Text.Encoding.ASCII.GetBytes(Path.GetFileName(_path)).AsSpan(0, Math.Min(IdBytes, Path.GetFileName(_path).Length)).CopyTo(expected);
        Assert.Equal(expected, _h.Get(id, IdBytes));
    }

    [Theory]
    [InlineData(2047UL, 2)]            // last sector + one beyond
    [InlineData(2048UL, 1)]            // just past the end
    [InlineData(ulong.MaxValue, 1)]    // sector arithmetic would wrap
    [InlineData(ulong.MaxValue / 512 + 1, 1)]
    public void Requests_beyond_the_capacity_fail_with_ioerr(ulong sector, int sectors)
    {
        Start();
        var buf = _h.Alloc(512 * sectors);
        Assert.Equal(StatusIoError, Request(TypeIn, sector, [(buf, (uint)(512 * sectors), true)]).Status);
        var data = _h.Alloc(512 * sectors);
        Assert.Equal(StatusIoError, Request(TypeOut, sector, [(data, (uint)(512 * sectors), false)]).Status);
        Assert.Equal(_original, File.ReadAllBytes(_path));
    }

    [Fact]
    public void A_transfer_not_in_whole_sectors_fails_with_ioerr()
    {
        Start();
        var buf = _h.Alloc(100);
        Assert.Equal(StatusIoError, Request(TypeIn, 0, [(buf, 100, true)]).Status);
    }

    [Fact]
    public void Unknown_request_types_are_unsupported()
    {
        Start();
        Assert.Equal(StatusUnsupported, Request(99, 0, []).Status);
        Assert.Equal(StatusUnsupported, Request(14 /* SECURE_ERASE, not offered */, 0, []).Status);
    }

    [Fact]
    public void A_request_without_a_status_byte_breaks_the_device()
    {
        Start();
        _ring.AddChain((Header(TypeIn, 0), HeaderSize, false));
        _blk!.Notify(0);
        Assert.Contains("status byte", Assert.Single(_h.Signals.Resets));
        Assert.True(_blk.IsBroken);
    }

    [Fact]
    public void A_short_header_breaks_the_device()
    {
        Start();
        _ring.AddChain((_h.Alloc(8), 8, false), (_h.Alloc(1), 1, true));
        _blk!.Notify(0);
        Assert.Single(_h.Signals.Resets);
    }

    [Fact]
    public void A_read_only_disk_refuses_writes_and_offers_ro()
    {
        var blk = Start(readOnly: true);
        Assert.NotEqual(0UL, blk.OfferedFeatures & FeatureReadOnly);
        Assert.Equal(0UL, blk.OfferedFeatures & (FeatureDiscard | FeatureWriteZeroes));
        var data = _h.Put(new byte[512]);
        Assert.Equal(StatusIoError, Request(TypeOut, 0, [(data, 512, false)]).Status);
        Assert.Equal(StatusUnsupported, Request(TypeDiscard, 0, [(RangeBuf(0, 8, 0), RangeSize, false)]).Status);
        var buf = _h.Alloc(512);
        Assert.Equal(StatusOk, Request(TypeIn, 1, [(buf, 512, true)]).Status);
        Assert.Equal(_original.AsSpan(512, 512).ToArray(), _h.Get(buf, 512));
        Assert.Equal(_original, File.ReadAllBytes(_path));
    }

    private ulong RangeBuf(ulong sector, uint count, uint flags)
    {
        var r = new byte[RangeSize];
        BinaryPrimitives.WriteUInt64LittleEndian(r, sector);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(8), count);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(12), flags);
        return _h.Put(r);
    }

    [SkippableFact]
    public void Discard_punches_a_hole_that_reads_as_zeros()
    {
        var blk = Start();
        Skip.If((blk.OfferedFeatures & FeatureDiscard) == 0, "the temporary directory's file system cannot punch holes");
        Assert.Equal(StatusOk, Request(TypeDiscard, 16, [(RangeBuf(16, 16, 0), RangeSize, false)]).Status);
        Assert.All(FileBytes(16 * 512, 16 * 512), b => Assert.Equal(0, b));
        Assert.Equal(_original.AsSpan(15 * 512, 512).ToArray(), FileBytes(15 * 512, 512));
        Assert.Equal(_original.AsSpan(32 * 512, 512).ToArray(), FileBytes(32 * 512, 512));
        Assert.Equal(ImageBytes, new FileInfo(_path).Length);
        // Discard with the unmap flag is unsupported (5.2.6.2); beyond the capacity is an I/O error.
        Assert.Equal(StatusUnsupported, Request(TypeDiscard, 0, [(RangeBuf(40, 8, RangeFlagUnmap), RangeSize, false)]).Status);
        Assert.Equal(StatusIoError, Request(TypeDiscard, 0, [(RangeBuf(2044, 8, 0), RangeSize, false)]).Status);
        Assert.Equal(_original.AsSpan(40 * 512, 4096).ToArray(), FileBytes(40 * 512, 4096));
    }

    [Fact]
    public void Write_zeroes_zeroes_several_ranges()
    {
        Start();
        var ranges = _h.Put([]);
        var r1 = RangeBuf(100, 3, 0);
        var r2 = RangeBuf(200, 1, RangeFlagUnmap);
        Assert.Equal(r1 + RangeSize, r2); // contiguous: one buffer of two ranges
        Assert.Equal(StatusOk, Request(TypeWriteZeroes, 0, [(r1, 2 * RangeSize, false)]).Status);
        Assert.All(FileBytes(100 * 512, 3 * 512), b => Assert.Equal(0, b));
        Assert.All(FileBytes(200 * 512, 512), b => Assert.Equal(0, b));
        Assert.Equal(_original.AsSpan(103 * 512, 512).ToArray(), FileBytes(103 * 512, 512));
        Assert.Equal(_original.AsSpan(199 * 512, 512).ToArray(), FileBytes(199 * 512, 512));
        _ = ranges;
    }

    private sealed class ScriptedFaults(Func<BlockRequest, BlockFault> decide) : IBlockFaultPoint
    {
        public List<BlockRequest> Seen { get; } = [];
        public BlockFault Decide(in BlockRequest request)
        {
            Seen.Add(request);
            return decide(request);
        }
    }

    [Fact]
    public void The_fault_point_sees_each_request_and_can_fail_it()
    {
        var faults = new ScriptedFaults(r => r.Kind == BlockRequestKind.Write ? BlockFault.IoError : BlockFault.None);
        Start(faults: faults);
        var data = _h.Put(new byte[1024]);
        Assert.Equal(StatusIoError, Request(TypeOut, 5, [(data, 1024, false)]).Status);
        Assert.Equal(_original, File.ReadAllBytes(_path));
        var buf = _h.Alloc(512);
        Assert.Equal(StatusOk, Request(TypeIn, 5, [(buf, 512, true)]).Status);
        Assert.Equal([new BlockRequest(BlockRequestKind.Write, 5, 1024), new BlockRequest(BlockRequestKind.Read, 5, 512)], faults.Seen);
    }

    [Fact]
    public void A_short_write_fault_tears_the_write()
    {
        Start(faults: new ScriptedFaults(r => r.Kind == BlockRequestKind.Write ? BlockFault.Short(512) : BlockFault.None));
        var data = Enumerable.Repeat((byte)0xAB, 1536).ToArray();
        Assert.Equal(StatusIoError, Request(TypeOut, 20, [(_h.Put(data), 1536, false)]).Status);
        Assert.All(FileBytes(20 * 512, 512), b => Assert.Equal(0xAB, b));
        Assert.Equal(_original.AsSpan(21 * 512, 1024).ToArray(), FileBytes(21 * 512, 1024));
    }

    [Fact]
    public void A_short_read_fault_transfers_part_then_fails()
    {
        Start(faults: new ScriptedFaults(r => r.Kind == BlockRequestKind.Read ? BlockFault.Short(512) : BlockFault.None));
        var buf = _h.Alloc(1024);
        var (status, used) = Request(TypeIn, 0, [(buf, 1024, true)]);
        Assert.Equal(StatusIoError, status);
        Assert.Equal(513u, used);
        Assert.Equal(_original.AsSpan(0, 512).ToArray(), _h.Get(buf, 512));
        Assert.All(_h.Get(buf + 512, 512), b => Assert.Equal(0, b));
    }

    [Fact]
    public void Synchronous_mode_completes_within_the_notify()
    {
        Start(sync: true);
        var buf = _h.Alloc(512);
        _ring.AddChain((Header(TypeIn, 2), HeaderSize, false), (buf, 512, true), (_h.Alloc(1), 1, true));
        _blk!.Notify(0);
        Assert.Equal(1, _ring.UsedIdx);
        Assert.Equal(_original.AsSpan(1024, 512).ToArray(), _h.Get(buf, 512));
    }

    [Fact]
    public void A_completion_arriving_after_a_reset_is_dropped()
    {
        var blk = Start();
        var buf = _h.Alloc(512);
        _ring.AddChain((Header(TypeIn, 2), HeaderSize, false), (buf, 512, true), (_h.Alloc(1), 1, true));
        blk.Notify(0);
        blk.Reset();
        Thread.Sleep(200); // the I/O thread finishes and posts its completion
        _h.Owner.Drain();
        Assert.Equal(0, _ring.UsedIdx);
        Assert.All(_h.Get(buf, 512), b => Assert.Equal(0, b));
    }

    [Fact]
    public void Many_requests_in_flight_all_complete_in_any_batch()
    {
        Start();
        var bufs = new ulong[20]; // 3 descriptors each, in a 64-entry table
        for (var i = 0; i < bufs.Length; i++)
        {
            bufs[i] = _h.Alloc(512);
            _ring.AddChain((Header(TypeIn, (ulong)i), HeaderSize, false), (bufs[i], 512, true), (_h.Alloc(1), 1, true));
        }
        _blk!.Notify(0);
        Assert.True(_h.Owner.RunUntil(() => _ring.UsedIdx == 20));
        for (var i = 0; i < bufs.Length; i++)
            Assert.Equal(_original.AsSpan(i * 512, 512).ToArray(), _h.Get(bufs[i], 512));
        Assert.Equal(0, _blk.InFlight);
    }

    private static Actorvisor.Kernel.Faults.FaultEngine Engine(params string[] rules) =>
        new(5, new Microsoft.Extensions.Time.Testing.FakeTimeProvider(), rules.Select(r =>
        {
            var map = r.Split(' ').Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]);
            return Actorvisor.Host.Faults.FaultScenario.ParseRule(map, "test");
        }));

    [Fact]
    public void An_engine_rule_on_a_sector_range_fails_the_requests_that_overlap_it_with_ioerr()
    {
        var blk = Start();
        var engine = Engine("name=bad-sectors device=virtio-blk-* kind=blk.read sectors=100-103 action=drop");
        blk.Faults = new EngineBlockFaults(engine, "virtio-blk-3");
        var buf = _h.Alloc(2048);
        Assert.Equal(StatusOk, Request(TypeIn, 96, [(buf, 2048, true)]).Status);     // 96-99: just before
        Assert.Equal(StatusIoError, Request(TypeIn, 98, [(buf, 2048, true)]).Status); // 98-101 overlaps
        Assert.Equal(StatusIoError, Request(TypeIn, 103, [(buf, 512, true)]).Status);
        Assert.Equal(StatusOk, Request(TypeIn, 104, [(buf, 512, true)]).Status);
        Assert.Equal(StatusOk, Request(TypeOut, 100, [(_h.Put(new byte[512]), 512, false)]).Status); // writes are not the rule's kind
        Assert.Equal((2L, 2L), (engine.Report()[0].Matched, engine.Report()[0].Fired)); // only the overlapping reads matched
    }

    [Fact]
    public void An_engine_short_write_lands_its_bytes_then_fails()
    {
        var blk = Start();
        blk.Faults = new EngineBlockFaults(Engine("name=short kind=blk.write action=short bytes=1024 once=true"), "virtio-blk-3");
        var data = Enumerable.Repeat((byte)0x5A, 2048).ToArray();
        Assert.Equal(StatusIoError, Request(TypeOut, 40, [(_h.Put(data), 2048, false)]).Status);
        Assert.All(FileBytes(40 * 512, 1024), b => Assert.Equal(0x5A, b));
        Assert.Equal(_original.AsSpan(42 * 512, 1024).ToArray(), FileBytes(42 * 512, 1024));
        Assert.Equal(StatusOk, Request(TypeOut, 40, [(_h.Put(data), 2048, false)]).Status); // once
    }

    [Fact]
    public void A_crash_during_a_write_tears_it_and_breaks_the_device()
    {
        var blk = Start();
        blk.Faults = new EngineBlockFaults(Engine("name=torn kind=blk.write action=crash bytes=512"), "virtio-blk-3");
        var data = Enumerable.Repeat((byte)0xC3, 1536).ToArray();
        var status = _h.Alloc(1);
        _h.Memory.WriteByte(status, 0xff);
        _ring.AddChain((Header(TypeOut, 60), HeaderSize, false), (_h.Put(data), 1536, false), (status, 1, true));
        blk.Notify(0);
        _h.Owner.Drain();
        Assert.NotNull(blk.BrokenReason);
        Assert.Contains("injected crash", blk.BrokenReason);
        Assert.Equal(0, _ring.UsedIdx);                       // never completed
        Assert.Equal(0xff, _h.Memory.ReadByte(status));
        Assert.All(FileBytes(60 * 512, 512), b => Assert.Equal(0xC3, b)); // the first sector landed
        Assert.Equal(_original.AsSpan(61 * 512, 1024).ToArray(), FileBytes(61 * 512, 1024));
    }

    [Theory]
    [InlineData("name=x kind=blk.read action=duplicate", "a block request can fail")]
    [InlineData("name=x kind=blk.read action=short", "short needs 'bytes'")]
    [InlineData("name=x kind=blk.write action=short bytes=100", "whole number of 512-byte sectors")]
    [InlineData("name=x kind=pio.write action=short bytes=512", "short applies to blk.read and blk.write")]
    [InlineData("name=x kind=pio.write sectors=1-2 action=drop", "sectors applies to kinds blk.read and blk.write")]
    public void Bad_block_rules_are_refused_with_the_reason(string rule, string message)
    {
        var e = Assert.Throws<FormatException>(() => Engine(rule));
        Assert.Contains(message, e.Message);
    }
}
