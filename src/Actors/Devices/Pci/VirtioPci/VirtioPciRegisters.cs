namespace Actorvisor.Actors.Devices.Pci.VirtioPci;

/// <summary>
/// The virtio-pci modern transport's layout (virtio 1.2, 4.1): PCI IDs, the vendor capability types, the
/// common configuration structure's fields, device status bits, and where each structure sits in our BARs
/// (QEMU's arrangement: MSI-X table and PBA in 32-bit BAR 1, the virtio structures a 4 KiB page each in 64-bit
/// prefetchable BAR 4).
/// </summary>
public static class VirtioPciRegisters
{
    public const ushort Vendor = 0x1AF4, DeviceIdBase = 0x1040, SubsystemId = 0x1100;
    public const byte Revision = 1;

    // virtio_pci_cap cfg_type (4.1.4).
    public const byte CapCommon = 1, CapNotify = 2, CapIsr = 3, CapDevice = 4, CapPciCfg = 5;

    public const int MsixBar = 1, StructuresBar = 4;
    public const ulong MsixBarSize = 0x1000, StructuresBarSize = 0x4000;
    public const uint MsixTableOffset = 0, MsixPbaOffset = 0x800;
    public const int MaxVectors = 0x800 / MsixCapability.EntrySize;
    public const uint CommonOffset = 0x0000, IsrOffset = 0x1000, DeviceOffset = 0x2000, NotifyOffset = 0x3000;
    public const uint NotifyOffMultiplier = 4;
    /// <summary>The common configuration fields up to queue_device (0x38 bytes); notify data and queue reset are not offered.</summary>
    public const int CommonLength = 0x38;

    // Common configuration fields (4.1.4.3).
    public const int DeviceFeatureSelect = 0x00, DeviceFeature = 0x04, DriverFeatureSelect = 0x08, DriverFeature = 0x0C;
    public const int ConfigMsixVector = 0x10, NumQueues = 0x12, DeviceStatus = 0x14, ConfigGeneration = 0x15;
    public const int QueueSelect = 0x16, QueueSize = 0x18, QueueMsixVector = 0x1A, QueueEnable = 0x1C, QueueNotifyOff = 0x1E;
    public const int QueueDesc = 0x20, QueueDriver = 0x28, QueueDevice = 0x30;

    // Device status (2.1).
    public const byte StatusAcknowledge = 1, StatusDriver = 2, StatusDriverOk = 4, StatusFeaturesOk = 8;
    public const byte StatusNeedsReset = 64, StatusFailed = 128;

    public const ushort NoVector = 0xFFFF;
    public const int FeatureVersion1 = 32;

    // ISR status bits (4.1.4.5).
    public const byte IsrQueue = 1, IsrConfig = 2;

    /// <summary>The PCI class a virtio device of this ID shows (as QEMU's): network, SCSI-less storage, serial, or "other".</summary>
    public static uint ClassFor(int deviceId) => deviceId switch
    {
        1 => 0x02_00_00,
        2 => 0x01_00_00,
        3 => 0x07_80_00,
        _ => 0xFF_00_00,
    };
}
