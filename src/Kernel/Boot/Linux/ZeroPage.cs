namespace Actorvisor.Kernel.Boot.Linux;

/// <summary>Offsets in struct boot_params ("the zero page"), arch/x86/include/uapi/asm/bootparam.h.</summary>
public static class ZeroPage
{
    public const int Size = 4096;
    public const int OffExtRamdiskImage = 0x0C0, OffExtRamdiskSize = 0x0C4, OffExtCmdLinePtr = 0x0C8;
    public const int OffAcpiRsdpAddr = 0x070;
    public const int OffAltMemK = 0x1E0;
    public const int OffE820Entries = 0x1E8;
    public const int OffSetupHeader = 0x1F1;
    public const int OffE820Table = 0x2D0;
    public const int E820EntrySize = 20;
    public const int E820MaxEntries = 128;
    /// <summary>type_of_loader 0xFF: "undefined" boot loader, the value for loaders without an assigned ID.</summary>
    public const byte LoaderTypeUndefined = 0xFF;
}
