namespace Actorvisor.Kernel.Boot.Acpi;

/// <summary>
/// The 36-byte System Description Table Header every ACPI table but the RSDP and FACS starts with
/// (ACPI 6.3, 5.2.6): signature, length, revision, checksum, OEM ID, OEM table ID, OEM revision, creator.
/// </summary>
public static class AcpiHeader
{
    public const int Size = 36;
    public const int LengthOffset = 4, ChecksumOffset = 9;
    public const string OemId = "ACTVSR";
    public const string OemTableId = "ACTORVSR";
    public const string CreatorId = "AVSR";

    public static TableBuilder Begin(string signature, byte revision)
    {
        var t = new TableBuilder();
        t.Ascii(signature, 4).U32(0).U8(revision).U8(0).Ascii(OemId, 6).Ascii(OemTableId, 8).U32(1).Ascii(CreatorId, 4).U32(1);
        return t;
    }

    /// <summary>Patches the length and the checksum over the whole table.</summary>
    public static byte[] Finish(TableBuilder t)
    {
        t.PatchU32(LengthOffset, (uint)t.Length);
        t.FixChecksum(ChecksumOffset, 0, t.Length);
        return t.ToArray();
    }
}
