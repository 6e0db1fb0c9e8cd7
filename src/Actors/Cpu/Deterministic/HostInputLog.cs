using System.Globalization;

namespace Actorvisor.Actors.Cpu.Deterministic;

/// <summary>
/// Host input of a deterministic run (console bytes), each with the retired-instruction count at which the
/// scheduler handed it to the guest: written by <c>--record FILE</c>, read back by <c>--replay FILE</c>.
/// One line per input: the count, a tab, the bytes in hex. Lines starting with '#' are comments.
/// </summary>
public static class HostInputLog
{
    public const string Header = "# actorvisor host input log v1: retired-instructions<TAB>hex-bytes";

    public readonly record struct Entry(long Retired, byte[] Data);

    public static string Format(Entry e) => $"{e.Retired.ToString(CultureInfo.InvariantCulture)}\t{Convert.ToHexStringLower(e.Data)}";

    /// <summary>Reads a log; a malformed line or counts that go backwards are an error naming the line.</summary>
    public static IReadOnlyList<Entry> Read(string path)
    {
        var entries = new List<Entry>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0 || line[0] == '#') continue;
            var tab = line.IndexOf('\t');
            byte[] data;
            if (tab <= 0 || !long.TryParse(line.AsSpan(0, tab), NumberStyles.None, CultureInfo.InvariantCulture, out var retired))
                throw new FormatException($"{path}:{lineNo}: expected COUNT<TAB>HEX");
            try
            {
                data = Convert.FromHexString(line.AsSpan(tab + 1));
            }
            catch (FormatException)
            {
                throw new FormatException($"{path}:{lineNo}: the input bytes are not hex");
            }
            if (entries.Count > 0 && retired < entries[^1].Retired)
                throw new FormatException($"{path}:{lineNo}: instruction counts must not go backwards");
            entries.Add(new Entry(retired, data));
        }
        return entries;
    }
}
