using Actorvisor.Actors.Devices.Virtio.HostIo;
using Microsoft.Win32.SafeHandles;

namespace Actorvisor.Actors.Devices.Virtio.Blk;

/// <summary>
/// A raw disk image file: positional reads and writes (<see cref="RandomAccess"/>), fdatasync, and hole punching
/// and zeroing through fallocate where the host file system supports it (probed once at open).
/// </summary>
public sealed class BlockImage : IDisposable
{
    private readonly SafeFileHandle _handle;

    public BlockImage(string path, bool readOnly)
    {
        _handle = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite,
            readOnly ? FileShare.ReadWrite : FileShare.Read);
        Path = path;
        ReadOnly = readOnly;
        Length = RandomAccess.GetLength(_handle);
        CanPunchHoles = !readOnly && ProbePunchHole();
    }

    public string Path { get; }
    public bool ReadOnly { get; }
    public long Length { get; }
    public bool CanPunchHoles { get; }

    private int Fd => (int)_handle.DangerousGetHandle();

    // Punching beyond the end with KEEP_SIZE changes nothing, but fails with EOPNOTSUPP where holes are not supported.
    private bool ProbePunchHole() =>
        Libc.fallocate(Fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, (Length + 4095) & ~4095L, 4096) == 0;

    public int Read(long offset, Span<byte> buffer)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = RandomAccess.Read(_handle, buffer[done..], offset + done);
            if (n == 0) { buffer[done..].Clear(); break; } // past the end of a file that shrank: zeros
            done += n;
        }
        return buffer.Length;
    }

    public void Write(long offset, ReadOnlySpan<byte> data) => RandomAccess.Write(_handle, data, offset);

    public void Flush()
    {
        if (Libc.fdatasync(Fd) != 0) throw new IOException($"fdatasync failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
    }

    /// <summary>Deallocates the range; it then reads as zeros.</summary>
    public void PunchHole(long offset, long length)
    {
        if (Libc.fallocate(Fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, offset, length) != 0)
            throw new IOException($"fallocate punch hole failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
    }

    /// <summary>Makes the range read as zeros: fallocate ZERO_RANGE where it works, else writes zeros.</summary>
    public void WriteZeroes(long offset, long length)
    {
        if (Libc.fallocate(Fd, Libc.FALLOC_FL_ZERO_RANGE | Libc.FALLOC_FL_KEEP_SIZE, offset, length) == 0) return;
        var zeros = new byte[(int)Math.Min(length, 1 << 20)];
        for (long done = 0; done < length; done += zeros.Length)
            Write(offset + done, zeros.AsSpan(0, (int)Math.Min(zeros.Length, length - done)));
    }

    public void Dispose() => _handle.Dispose();
}
