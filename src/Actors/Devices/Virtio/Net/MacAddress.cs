using System.Globalization;
using System.Security.Cryptography;

namespace Actorvisor.Actors.Devices.Virtio.Net;

/// <summary>Ethernet MAC addresses for NICs: parsed from "aa:bb:cc:dd:ee:ff", or made up.</summary>
public static class MacAddress
{
    public static bool TryParse(string text, out byte[] mac)
    {
        mac = new byte[6];
        var parts = text.Split(':', '-');
        if (parts.Length != 6) return false;
        for (var i = 0; i < 6; i++)
            if (parts[i].Length != 2 || !byte.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out mac[i])) return false;
        // A NIC's own address must be unicast.
        return (mac[0] & 1) == 0;
    }

    /// <summary>A random locally administered unicast address (02:xx:..., so it never collides with a vendor's).</summary>
    public static byte[] Random()
    {
        var mac = new byte[6];
        RandomNumberGenerator.Fill(mac);
        mac[0] = (byte)((mac[0] & 0xfc) | 0x02);
        return mac;
    }

    public static string Format(ReadOnlySpan<byte> mac) => string.Join(':', mac.ToArray().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
}
