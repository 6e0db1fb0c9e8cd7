namespace Actorvisor.Actors.Devices.Virtio.Blk;

/// <summary>virtio-blk constants (virtio 1.2, section 5.2).</summary>
public static class BlkSpec
{
    public const int SectorSize = 512;
    public const int HeaderSize = 16;
    public const int IdBytes = 20;
    /// <summary>Size of one discard / write-zeroes range: sector u64, num_sectors u32, flags u32.</summary>
    public const int RangeSize = 16;
    public const uint RangeFlagUnmap = 1;

    // Feature bits (5.2.3).
    public const ulong FeatureSizeMax = 1UL << 1;
    public const ulong FeatureSegMax = 1UL << 2;
    public const ulong FeatureReadOnly = 1UL << 5;
    public const ulong FeatureBlkSize = 1UL << 6;
    public const ulong FeatureFlush = 1UL << 9;
    public const ulong FeatureDiscard = 1UL << 13;
    public const ulong FeatureWriteZeroes = 1UL << 14;

    // Request types (5.2.6).
    public const uint TypeIn = 0, TypeOut = 1, TypeFlush = 4, TypeGetId = 8, TypeDiscard = 11, TypeWriteZeroes = 13;

    // Status byte.
    public const byte StatusOk = 0, StatusIoError = 1, StatusUnsupported = 2;

    // Configuration layout (struct virtio_blk_config).
    public const int ConfigCapacity = 0;           // u64, in 512-byte sectors
    public const int ConfigSizeMax = 8;            // u32
    public const int ConfigSegMax = 12;            // u32
    public const int ConfigBlkSize = 20;           // u32
    public const int ConfigNumQueues = 34;         // u16
    public const int ConfigMaxDiscardSectors = 36; // u32
    public const int ConfigMaxDiscardSeg = 40;     // u32
    public const int ConfigDiscardAlignment = 44;  // u32
    public const int ConfigMaxWriteZeroesSectors = 48;
    public const int ConfigMaxWriteZeroesSeg = 52;
    public const int ConfigWriteZeroesMayUnmap = 56; // u8
    public const int ConfigLength = 60;
}
