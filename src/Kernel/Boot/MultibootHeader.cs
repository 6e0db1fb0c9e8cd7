using System.Buffers.Binary;

namespace Actorvisor.Kernel.Boot;

/// <summary>
/// The Multiboot (version 1) header: magic 0x1BADB002, flags and checksum in the first 8 KiB of the image,
/// 32-bit aligned; with flag bit 16 the address fields say where to load the image (the "a.out kludge").
/// </summary>
public sealed record MultibootHeader(
    int FileOffset, uint Flags, uint HeaderAddr, uint LoadAddr, uint LoadEndAddr, uint BssEndAddr, uint EntryAddr)
{
    public const uint Magic = 0x1BADB002;
    /// <summary>EAX at entry, telling the kernel a Multiboot loader started it.</summary>
    public const uint BootloaderMagic = 0x2BADB002;
    public const int SearchLimit = 8192;

    public const uint FlagPageAlignModules = 1 << 0;
    public const uint FlagMemoryInfo = 1 << 1;
    public const uint FlagVideoMode = 1 << 2;
    public const uint FlagAddressFields = 1 << 16;

    public bool HasAddressFields => (Flags & FlagAddressFields) != 0;

    /// <summary>Finds the header, or null if the image has none with a valid checksum.</summary>
    public static MultibootHeader? Find(ReadOnlySpan<byte> image)
    {
        var limit = Math.Min(image.Length, SearchLimit);
        for (var off = 0; off + 12 <= limit; off += 4)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(image[off..]) != Magic) continue;
            var flags = BinaryPrimitives.ReadUInt32LittleEndian(image[(off + 4)..]);
            var checksum = BinaryPrimitives.ReadUInt32LittleEndian(image[(off + 8)..]);
            if (unchecked(Magic + flags + checksum) != 0) continue;
            Span<uint> fields = stackalloc uint[5];
            for (var i = 0; i < 5; i++)
            {
                var at = off + 12 + i * 4;
                fields[i] = at + 4 <= image.Length ? BinaryPrimitives.ReadUInt32LittleEndian(image[at..]) : 0;
            }
            return new MultibootHeader(off, flags, fields[0], fields[1], fields[2], fields[3], fields[4]);
        }
        return null;
    }
}
