namespace Actorvisor.Kernel.Faults;

/// <summary>
/// Which events a rule applies to. Every field given must match; null matches anything. <see cref="Device"/>
/// is a name with '*' and '?' wildcards (the device actor's name: "uart-0", "hpet", "pit" ...).
/// <see cref="From"/>..<see cref="To"/> (inclusive) is a port or MMIO address range, or a GSI range for IRQs.
/// </summary>
public sealed record FaultTarget(string? Device = null, FaultKind? Kind = null, ulong? From = null, ulong? To = null)
{
    public bool Matches(in FaultPoint p) =>
        (Kind is null || Kind == p.Kind)
        && (Device is null || Glob.Matches(Device, p.Device))
        // A block request matches a sector range it overlaps.
        && (From is null || (FaultPoint.IsBlock(p.Kind) ? p.LastSector : p.Address) >= From)
        && (To is null || p.Address <= To);
}

/// <summary>What a rule does when it fires.</summary>
/// <param name="Verdict">The kind of fault.</param>
/// <param name="Delay">For <see cref="FaultVerdict.Delay"/>: how much later (negative: a timer fires early).</param>
/// <param name="Value">For <see cref="FaultVerdict.Replace"/>: the value.</param>
/// <param name="XorMask">For <see cref="FaultVerdict.Corrupt"/>: the value delivered is the original XOR this mask.</param>
/// <param name="RandomBit">For <see cref="FaultVerdict.Corrupt"/>: flip one random bit of the access's width (seeded) instead.</param>
/// <param name="Bytes">For <see cref="FaultVerdict.Short"/>, and a crash on a block write (a torn write): the bytes moved before the fault.</param>
public sealed record FaultAction(FaultVerdict Verdict, TimeSpan Delay = default, ulong Value = 0, ulong XorMask = 0, bool RandomBit = false, uint Bytes = 0);

/// <summary>
/// When a matching event makes the rule fire; every condition given must hold (blkdebug-like). Counting is
/// over the events the target matched: <see cref="After"/> skips the first N, <see cref="Every"/> fires on
/// each Nth of the rest, <see cref="Probability"/> then draws from the seeded generator, <see cref="Limit"/>
/// caps the fires (1 = once). <see cref="WindowFrom"/>/<see cref="WindowTo"/> bound the guest time
/// (the VM clock since power-on).
/// </summary>
public sealed record FaultTrigger(long After = 0, long Every = 1, double Probability = 1.0, long? Limit = null,
    TimeSpan? WindowFrom = null, TimeSpan? WindowTo = null)
{
    public static readonly FaultTrigger Always = new();
}

/// <summary>A named rule; with <see cref="InState"/> it applies only while the engine is in that state, and firing moves it to <see cref="ToState"/>.</summary>
public sealed record FaultRule(string Name, FaultTarget Target, FaultAction Action, FaultTrigger Trigger, string? InState = null, string? ToState = null)
{
    /// <summary>The IOAPIC's pin count: a storm names one of its GSIs.</summary>
    public const int StormGsiLimit = 24;

    /// <summary>Problems that make the rule unusable, each naming the rule; empty when it is valid.</summary>
    public IEnumerable<string> Validate(IReadOnlySet<string>? knownDevices = null)
    {
        if (string.IsNullOrWhiteSpace(Name)) yield return "a rule needs a name";
        var at = $"rule '{Name}'";
        if (Target.From is { } f && Target.To is { } t && f > t) yield return $"{at}: the range 0x{f:x}-0x{t:x} is empty";
        if (Target.Device is { } d && knownDevices is not null && !d.Contains('*') && !d.Contains('?') && !knownDevices.Contains(d))
            yield return $"{at}: no device is named '{d}' (devices: {string.Join(", ", knownDevices.Order())})";
        if (Trigger.Probability is < 0 or > 1 or double.NaN) yield return $"{at}: probability {Trigger.Probability} is not between 0 and 1";
        if (Trigger.Every < 1) yield return $"{at}: every must be 1 or more";
        if (Trigger.After < 0) yield return $"{at}: after must not be negative";
        if (Trigger.Limit is < 1) yield return $"{at}: limit must be 1 or more";
        if (Trigger is { WindowFrom: { } wf, WindowTo: { } wt } && wf > wt) yield return $"{at}: the time window ends before it starts";
        var kind = Target.Kind;
        if (FaultPoint.IsBlock(kind) && Action.Verdict is not (FaultVerdict.Drop or FaultVerdict.Short or FaultVerdict.Crash))
            yield return $"{at}: a block request can fail (drop: the guest gets an I/O error), be cut short (short) or crash the device (crash)";
        else if (FaultPoint.IsNet(kind) && Action.Verdict is not (FaultVerdict.Drop or FaultVerdict.Duplicate or FaultVerdict.Corrupt))
            yield return $"{at}: a frame can be lost (drop), duplicated (duplicate) or corrupted (corrupt)";
        else if (Action.Verdict == FaultVerdict.Short && !FaultPoint.IsBlock(kind))
            yield return $"{at}: short applies to blk.read and blk.write";
        else if (Action.Verdict == FaultVerdict.Short && Action.Bytes == 0)
            yield return $"{at}: short needs 'bytes' (how many move before the error), a whole number of 512-byte sectors";
        if (Action.Bytes % 512 != 0) yield return $"{at}: bytes must be a whole number of 512-byte sectors";
        if (Action.Bytes != 0 && !FaultPoint.IsBlock(kind)) yield return $"{at}: bytes applies to blk.read and blk.write";
        if (FaultPoint.IsBlock(kind) || FaultPoint.IsNet(kind))
        {
            if (Action.Verdict == FaultVerdict.Corrupt && Action.XorMask == 0 && !Action.RandomBit)
                yield return $"{at}: corrupt needs a nonzero mask or random-bit";
            yield break;
        }
        switch (Action.Verdict)
        {
            case FaultVerdict.Delay when kind is FaultKind.PioRead or FaultKind.MmioRead:
                yield return $"{at}: a read cannot be delayed (the vCPU waits for it); corrupt or replace it instead";
                break;
            case FaultVerdict.Delay when Action.Delay < TimeSpan.Zero && kind is not FaultKind.Timer:
                yield return $"{at}: only a timer can fire early (negative delay)";
                break;
            case FaultVerdict.Duplicate when kind is FaultKind.PioRead or FaultKind.MmioRead or FaultKind.Timer:
                yield return $"{at}: only writes and interrupts can be duplicated";
                break;
            case FaultVerdict.Replace or FaultVerdict.Corrupt when kind is null or FaultKind.Irq or FaultKind.Timer:
                yield return $"{at}: {(kind is null ? "replace and corrupt need a kind with a value (pio.*, mmio.*, msi)" : "an IRQ or a timer has no value to change")}";
                break;
            case FaultVerdict.Corrupt when Action.XorMask == 0 && !Action.RandomBit:
                yield return $"{at}: corrupt needs a nonzero mask or random-bit";
                break;
            case FaultVerdict.Crash when kind is FaultKind.Irq or FaultKind.Msi or FaultKind.Timer:
                yield return $"{at}: crash needs an access to a device (pio.* or mmio.*)";
                break;
            case FaultVerdict.Storm when kind is not FaultKind.Irq || Target.From is null || Target.From != Target.To:
                yield return $"{at}: a storm needs one GSI (gsi: N)";
                break;
            case FaultVerdict.Storm when Target.From >= StormGsiLimit:
                yield return $"{at}: no GSI {Target.From} to storm (the IOAPIC has GSIs 0-{StormGsiLimit - 1})";
                break;
            case FaultVerdict.Storm when Target.Device is not null:
                yield return $"{at}: a storm raises the line itself; it takes no device";
                break;
            case FaultVerdict.Storm when Trigger != FaultTrigger.Always || InState is not null || ToState is not null:
                yield return $"{at}: a storm holds its line from when it is added until it is removed; it takes no trigger or state";
                break;
        }
    }
}

/// <summary>Shell-style wildcards: '*' any run of characters, '?' one character.</summary>
public static class Glob
{
    public static bool Matches(string pattern, string text) => Match(pattern, 0, text, 0);

    private static bool Match(string p, int i, string t, int j)
    {
        while (i < p.Length)
        {
            if (p[i] == '*')
            {
                for (var k = j; k <= t.Length; k++)
                    if (Match(p, i + 1, t, k)) return true;
                return false;
            }
            if (j >= t.Length || (p[i] != '?' && p[i] != t[j])) return false;
            i++;
            j++;
        }
        return j == t.Length;
    }
}

/// <summary>A fault rule that cannot apply to this VM (a device it does not have).</summary>
public sealed class FaultRuleException(string message) : Exception(message);
