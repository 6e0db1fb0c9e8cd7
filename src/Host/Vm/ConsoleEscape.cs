namespace Actorvisor.Host.Vm;

/// <summary>
/// QEMU's console escapes on a terminal: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A to the guest, and
/// Ctrl-A followed by anything else sends both bytes. The state (a pending Ctrl-A) carries across reads,
/// since the two keys can arrive in separate reads.
/// </summary>
public sealed class ConsoleEscape
{
    public const byte Prefix = 0x01; // Ctrl-A
    public const byte QuitKey = (byte)'x';

    private bool _pending;

    /// <summary>Appends to <paramref name="toGuest"/> what the guest receives of <paramref name="input"/>; true when the user asked to quit.</summary>
    public bool Feed(ReadOnlySpan<byte> input, List<byte> toGuest)
    {
        foreach (var b in input)
        {
            if (!_pending)
            {
                if (b == Prefix) _pending = true;
                else toGuest.Add(b);
                continue;
            }
            _pending = false;
            if (b == QuitKey) return true;
            if (b != Prefix) toGuest.Add(Prefix);
            toGuest.Add(b);
        }
        return false;
    }
}
