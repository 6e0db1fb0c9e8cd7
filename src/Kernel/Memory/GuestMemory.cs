using System.Buffers.Binary;

namespace Actorvisor.Kernel.Memory;

/// <summary>
/// Guest-physical RAM: below the PCI hole (3 GiB) and, for larger guests, the rest from 4 GiB up.
/// Every access on the guest's behalf is bounds-checked: a bad guest address yields false or a
/// <see cref="GuestMemoryException"/>, never a read or write of host memory outside the regions.
/// Also tracks which pages hold decoded code, so writes to them invalidate the decode caches.
/// </summary>
public sealed unsafe class GuestMemory : IDisposable
{
    public const ulong PciHoleStart = 3UL << 30;
    public const ulong HighRamStart = 4UL << 30;
    public const int PageShift = 12;
    public const ulong PageSize = 1UL << PageShift;

    private readonly MemoryRegion[] _regions;
    /// <summary>One byte per RAM page: non-zero while some vCPU holds decoded blocks from the page.</summary>
    private readonly byte[] _codeMark;
    /// <summary>Bumped when a code page is written; decoded blocks remember the version they came from.</summary>
    private readonly int[] _codeVersion;

    public ulong RamSize { get; }
    public IReadOnlyList<MemoryRegion> Regions => _regions;
    /// <summary>One past the highest guest-physical RAM address.</summary>
    public ulong TopOfRam { get; }

    public GuestMemory(ulong ramSize)
    {
        if (ramSize < 1 << 20) throw new ArgumentException("guest RAM must be at least 1 MiB", nameof(ramSize));
        ramSize = (ramSize + PageSize - 1) & ~(PageSize - 1);
        RamSize = ramSize;
        if (ramSize <= PciHoleStart)
            _regions = [new MemoryRegion(0, ramSize)];
        else
            _regions = [new MemoryRegion(0, PciHoleStart), new MemoryRegion(HighRamStart, ramSize - PciHoleStart)];
        TopOfRam = _regions[^1].GuestEnd;
        var pages = TopOfRam >> PageShift;
        _codeMark = new byte[pages];
        _codeVersion = new int[pages];
    }

    public MemoryRegion LowRegion => _regions[0];

    /// <summary>Host pointer for a guest-physical address if it is RAM, else null.</summary>
    public byte* HostPointer(ulong gpa)
    {
        var low = _regions[0];
        if (gpa < low.Size) return low.Host + gpa;
        if (_regions.Length > 1)
        {
            var hi = _regions[1];
            if (gpa >= hi.GuestBase && gpa - hi.GuestBase < hi.Size) return hi.Host + (gpa - hi.GuestBase);
        }
        return null;
    }

    public bool IsRam(ulong gpa, ulong length)
    {
        foreach (var r in _regions) if (r.Contains(gpa, length)) return true;
        return false;
    }

    /// <summary>A span over guest RAM; the range must lie within one region.</summary>
    public bool TryGetSpan(ulong gpa, int length, out Span<byte> span)
    {
        foreach (var r in _regions)
        {
            if (length >= 0 && r.Contains(gpa, (ulong)length))
            {
                span = new Span<byte>(r.Host + (gpa - r.GuestBase), length);
                return true;
            }
        }
        span = default;
        return false;
    }

    public Span<byte> GetSpan(ulong gpa, int length) =>
        TryGetSpan(gpa, length, out var s) ? s : throw new GuestMemoryException(gpa, length);

    public void Read(ulong gpa, Span<byte> dest) => GetSpan(gpa, dest.Length).CopyTo(dest);

    public void Write(ulong gpa, ReadOnlySpan<byte> src)
    {
        src.CopyTo(GetSpan(gpa, src.Length));
        NoteWrite(gpa, (ulong)src.Length);
    }

    public bool TryRead(ulong gpa, Span<byte> dest)
    {
        if (!TryGetSpan(gpa, dest.Length, out var s)) return false;
        s.CopyTo(dest);
        return true;
    }

    public bool TryWrite(ulong gpa, ReadOnlySpan<byte> src)
    {
        if (!TryGetSpan(gpa, src.Length, out var s)) return false;
        src.CopyTo(s);
        NoteWrite(gpa, (ulong)src.Length);
        return true;
    }

    public byte ReadByte(ulong gpa) => GetSpan(gpa, 1)[0];
    public ushort ReadUInt16(ulong gpa) => BinaryPrimitives.ReadUInt16LittleEndian(GetSpan(gpa, 2));
    public uint ReadUInt32(ulong gpa) => BinaryPrimitives.ReadUInt32LittleEndian(GetSpan(gpa, 4));
    public ulong ReadUInt64(ulong gpa) => BinaryPrimitives.ReadUInt64LittleEndian(GetSpan(gpa, 8));
    public void WriteByte(ulong gpa, byte v) { GetSpan(gpa, 1)[0] = v; NoteWrite(gpa, 1); }
    public void WriteUInt16(ulong gpa, ushort v) { BinaryPrimitives.WriteUInt16LittleEndian(GetSpan(gpa, 2), v); NoteWrite(gpa, 2); }
    public void WriteUInt32(ulong gpa, uint v) { BinaryPrimitives.WriteUInt32LittleEndian(GetSpan(gpa, 4), v); NoteWrite(gpa, 4); }
    public void WriteUInt64(ulong gpa, ulong v) { BinaryPrimitives.WriteUInt64LittleEndian(GetSpan(gpa, 8), v); NoteWrite(gpa, 8); }

    // ---- code-page tracking (self-modifying code) ----

    /// <summary>
    /// Bumped with every code page's version: while it is unchanged no decoded block anywhere went stale, so a
    /// vCPU can follow its links between blocks without checking each page's version.
    /// </summary>
    public int CodeEpoch => Volatile.Read(ref _codeEpoch);
    private int _codeEpoch;

    public int CodeVersion(ulong ppn) => ppn < (ulong)_codeVersion.Length ? Volatile.Read(ref _codeVersion[ppn]) : 0;

    /// <summary>
    /// Marks a page as holding decoded code; returns the version the decoder must record. The version is read
    /// before the mark is set: if another vCPU's write invalidates the page in between (clearing the mark and
    /// bumping the version), the block gets the older version and is decoded again, which marks the page again.
    /// Reading it after could hand the block the new version while the mark stays cleared, and later writes
    /// would then not invalidate it.
    /// </summary>
    public int MarkCode(ulong ppn)
    {
        if (ppn >= (ulong)_codeMark.Length) return 0;
        var version = Volatile.Read(ref _codeVersion[ppn]);
        Volatile.Write(ref _codeMark[ppn], 1);
        return version;
    }

    /// <summary>Called for every write into RAM that did not come through a path that already checked.</summary>
    public void NoteWrite(ulong gpa, ulong length)
    {
        if (length == 0) return;
        var first = gpa >> PageShift;
        var last = (gpa + length - 1) >> PageShift;
        for (var p = first; p <= last && p < (ulong)_codeMark.Length; p++)
            if (_codeMark[p] != 0) InvalidateCodePage(p);
    }

    /// <summary>True if the page holds decoded code (the write fast path tests this, inline: every store asks).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool IsCodePage(ulong ppn) => ppn < (ulong)_codeMark.Length && _codeMark[ppn] != 0;

    public void InvalidateCodePage(ulong ppn)
    {
        if (ppn >= (ulong)_codeMark.Length) return;
        Volatile.Write(ref _codeMark[ppn], 0);
        Interlocked.Increment(ref _codeVersion[ppn]);
        Interlocked.Increment(ref _codeEpoch);
    }

    public void Dispose()
    {
        foreach (var r in _regions) r.Dispose();
    }
}

public sealed class GuestMemoryException(ulong gpa, long length)
    : Exception($"guest-physical range 0x{gpa:x}+{length} is not RAM")
{
    public ulong Address { get; } = gpa;
}
