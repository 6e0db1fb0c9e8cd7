namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// An ACPI Generic Address Structure (ACPI 6.3, 5.2.3.2): 12 bytes naming a register by address space,
/// bit width, bit offset, access size and address.
/// </summary>
public readonly record struct Gas(byte AddressSpace, byte BitWidth, byte BitOffset, byte AccessSize, ulong Address)
{
    public const int Size = 12;
    public const byte SystemMemory = 0, SystemIo = 1;
    /// <summary>Access size codes: 0 undefined, 1 byte, 2 word, 3 dword, 4 qword.</summary>
    public const byte AccessByte = 1, AccessWord = 2, AccessDword = 3;

    public static readonly Gas None = default;

    public static Gas Io(ushort port, int lengthBytes, byte accessSize) =>
        new(SystemIo, (byte)(lengthBytes * 8), 0, accessSize, port);

    public void WriteTo(TableBuilder t) => t.U8(AddressSpace).U8(BitWidth).U8(BitOffset).U8(AccessSize).U64(Address);
}
