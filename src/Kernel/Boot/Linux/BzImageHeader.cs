using System.Buffers.Binary;

namespace Actorvisor.Kernel.Boot.Linux;

/// <summary>
/// The real-mode setup header of a bzImage (Linux x86 boot protocol, Documentation/arch/x86/boot.rst),
/// the fields a 64-bit direct boot needs. Offsets are from the start of the image file, which are also
/// the offsets inside boot_params ("the zero page") where the header is copied.
/// </summary>
public sealed record BzImageHeader
{
    public const int OffSetupSects = 0x1F1, OffBootFlag = 0x1FE, OffHeader = 0x202, OffVersion = 0x206;
    public const int OffTypeOfLoader = 0x210, OffLoadFlags = 0x211, OffCode32Start = 0x214;
    public const int OffRamdiskImage = 0x218, OffRamdiskSize = 0x21C, OffHeapEndPtr = 0x224, OffCmdLinePtr = 0x228;
    public const int OffInitrdAddrMax = 0x22C, OffKernelAlignment = 0x230, OffRelocatable = 0x234;
    public const int OffXLoadFlags = 0x236, OffCmdlineSize = 0x238, OffPrefAddress = 0x258, OffInitSize = 0x260;
    /// <summary>The setup header ends at 0x202 + the byte at 0x201 (the jump's displacement).</summary>
    public const int OffHeaderEndJump = 0x201;

    public const ushort BootFlagMagic = 0xAA55;
    public const uint HeaderMagic = 0x53726448; // "HdrS"
    public const byte LoadedHigh = 0x01, CanUseHeap = 0x80;
    public const ushort XlfKernel64 = 0x01, XlfCanBeLoadedAbove4G = 0x02;
    /// <summary>The 64-bit entry point is 0x200 bytes into the protected-mode kernel.</summary>
    public const ulong Entry64Offset = 0x200;

    public required int SetupSectors { get; init; }
    public required ushort Version { get; init; }
    public required byte LoadFlags { get; init; }
    public required ushort XLoadFlags { get; init; }
    public required uint InitrdAddrMax { get; init; }
    public required uint KernelAlignment { get; init; }
    public required bool Relocatable { get; init; }
    public required uint CmdlineSize { get; init; }
    public required ulong PrefAddress { get; init; }
    public required uint InitSize { get; init; }
    /// <summary>Bytes of the setup header proper (0x1F1 up to its end), copied into boot_params.</summary>
    public required int HeaderLength { get; init; }

    /// <summary>File offset of the protected-mode kernel.</summary>
    public int KernelOffset => (SetupSectors + 1) * 512;

    public static bool LooksLikeBzImage(ReadOnlySpan<byte> image) =>
        image.Length >= 0x264 && BinaryPrimitives.ReadUInt16LittleEndian(image[OffBootFlag..]) == BootFlagMagic &&
        BinaryPrimitives.ReadUInt32LittleEndian(image[OffHeader..]) == HeaderMagic;

    /// <summary>Parses and validates the header for a 64-bit direct boot; the message says what is wrong.</summary>
    public static BzImageHeader Parse(ReadOnlySpan<byte> image)
    {
        if (!LooksLikeBzImage(image)) throw new KernelImageException("not a Linux bzImage (no 0xAA55 boot flag and \"HdrS\" header)");
        var version = BinaryPrimitives.ReadUInt16LittleEndian(image[OffVersion..]);
        // 2.12 added xloadflags (the 64-bit entry flag) and 2.10 pref_address/init_size.
        if (version < 0x20C) throw new KernelImageException($"boot protocol {version >> 8}.{version & 0xFF} is too old: 2.12 or later is needed for a 64-bit entry");
        var setupSects = image[OffSetupSects] == 0 ? 4 : image[OffSetupSects];
        var xlf = BinaryPrimitives.ReadUInt16LittleEndian(image[OffXLoadFlags..]);
        if ((xlf & XlfKernel64) == 0) throw new KernelImageException("the kernel has no 64-bit entry point (xloadflags bit 0 clear)");
        var loadFlags = image[OffLoadFlags];
        if ((loadFlags & LoadedHigh) == 0) throw new KernelImageException("a zImage (loaded low) is not supported; use a bzImage");
        var h = new BzImageHeader
        {
            SetupSectors = setupSects,
            Version = version,
            LoadFlags = loadFlags,
            XLoadFlags = xlf,
            InitrdAddrMax = BinaryPrimitives.ReadUInt32LittleEndian(image[OffInitrdAddrMax..]),
            KernelAlignment = BinaryPrimitives.ReadUInt32LittleEndian(image[OffKernelAlignment..]),
            Relocatable = image[OffRelocatable] != 0,
            CmdlineSize = BinaryPrimitives.ReadUInt32LittleEndian(image[OffCmdlineSize..]),
            PrefAddress = BinaryPrimitives.ReadUInt64LittleEndian(image[OffPrefAddress..]),
            InitSize = BinaryPrimitives.ReadUInt32LittleEndian(image[OffInitSize..]),
            HeaderLength = 0x202 + image[OffHeaderEndJump] - OffSetupSects,
        };
        if (h.KernelOffset >= image.Length) throw new KernelImageException("the bzImage is truncated: no protected-mode kernel after the setup sectors");
        return h;
    }
}
