using System.Runtime.InteropServices;

namespace Actorvisor.Kernel.Memory;

/// <summary>
/// One contiguous host mapping backing a range of guest-physical RAM, with an inaccessible guard
/// range on each side (as bhyve's MAP_GUARD) so a host bug that runs off the end faults instead of
/// touching other host memory. Pages are reserved lazily by the kernel (MAP_NORESERVE): an idle guest
/// costs only what it touches.
/// </summary>
public sealed unsafe class MemoryRegion : IDisposable
{
    public const ulong GuardSize = 2 * 1024 * 1024;

    private nint _mapping;
    private readonly nuint _mappingSize;

    public ulong GuestBase { get; }
    public ulong Size { get; }
    public ulong GuestEnd => GuestBase + Size;
    public byte* Host { get; }

    public MemoryRegion(ulong guestBase, ulong size)
    {
        if (size == 0 || (size & 0xFFF) != 0) throw new ArgumentException("region size must be a non-zero multiple of 4 KiB", nameof(size));
        if ((guestBase & 0xFFF) != 0) throw new ArgumentException("region base must be page aligned", nameof(guestBase));
        GuestBase = guestBase;
        Size = size;
        _mappingSize = (nuint)(size + 2 * GuardSize);
        _mapping = NativeMethods.mmap(0, _mappingSize, NativeMethods.PROT_NONE,
            NativeMethods.MAP_PRIVATE | NativeMethods.MAP_ANONYMOUS | NativeMethods.MAP_NORESERVE, -1, 0);
        if (_mapping == NativeMethods.MAP_FAILED)
            throw new OutOfMemoryException($"mmap of {size >> 20} MiB guest RAM failed (errno {Marshal.GetLastPInvokeError()})");
        Host = (byte*)_mapping + GuardSize;
        if (NativeMethods.mprotect((nint)Host, (nuint)size, NativeMethods.PROT_READ | NativeMethods.PROT_WRITE) != 0)
        {
            NativeMethods.munmap(_mapping, _mappingSize);
            throw new OutOfMemoryException($"mprotect of guest RAM failed (errno {Marshal.GetLastPInvokeError()})");
        }
    }

    public bool Contains(ulong gpa, ulong length) => gpa >= GuestBase && length <= Size && gpa - GuestBase <= Size - length;

    public Span<byte> AsSpan(ulong gpa, int length)
    {
        if (!Contains(gpa, (ulong)length)) throw new ArgumentOutOfRangeException(nameof(gpa));
        return new Span<byte>(Host + (gpa - GuestBase), length);
    }

    /// <summary>Zeroes the region (a VM reset), giving the pages back to the host.</summary>
    public void Clear()
    {
        // Re-mapping over the range drops the pages; cheaper than touching every byte.
        var p = NativeMethods.mmap((nint)Host, (nuint)Size, NativeMethods.PROT_READ | NativeMethods.PROT_WRITE,
            NativeMethods.MAP_PRIVATE | NativeMethods.MAP_ANONYMOUS | NativeMethods.MAP_NORESERVE | 0x10 /* MAP_FIXED */, -1, 0);
        if (p == NativeMethods.MAP_FAILED) new Span<byte>(Host, (int)Math.Min(Size, int.MaxValue)).Clear();
    }

    public void Dispose()
    {
        if (_mapping != 0)
        {
            NativeMethods.munmap(_mapping, _mappingSize);
            _mapping = 0;
        }
    }
}
