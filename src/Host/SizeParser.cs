using System.Globalization;

namespace Actorvisor.Host;

/// <summary>
/// Memory sizes as bhyve's -m takes them: a number with an optional K, M, G or T suffix (either case);
/// a bare number is megabytes.
/// </summary>
public static class SizeParser
{
    public const ulong Min = 1UL << 20;
    /// <summary>The largest guest this program allocates (its page bookkeeping grows with RAM).</summary>
    public const ulong Max = 64UL << 30;

    public static bool TryParse(string text, out ulong bytes, out string? error)
    {
        bytes = 0;
        error = null;
        var t = text.Trim();
        if (t.Length == 0) { error = "memory size is empty"; return false; }
        var shift = char.ToUpperInvariant(t[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => -1 };
        var digits = shift < 0 ? t : t[..^1];
        if (shift < 0) shift = 20;
        if (!ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            error = $"'{text}' is not a memory size (examples: 256M, 1G, 512 for 512 MiB)";
            return false;
        }
        if (n > (ulong.MaxValue >> shift)) { error = $"memory size '{text}' is too large"; return false; }
        bytes = n << shift;
        if (bytes < Min) { error = $"memory size '{text}' is below the 1 MiB minimum"; return false; }
        if (bytes > Max) { error = $"memory size '{text}' is above the {Max >> 30} GiB maximum"; return false; }
        return true;
    }
}
