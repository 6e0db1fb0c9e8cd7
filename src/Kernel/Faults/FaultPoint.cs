namespace Actorvisor.Kernel.Faults;

/// <summary>Where a fault may be injected: the kind of event the engine is asked about.</summary>
public enum FaultKind : byte
{
    PioRead, PioWrite, MmioRead, MmioWrite,
    /// <summary>A line change or pulse on a GSI (SetIrq/PulseIrq) on its way to the PIC and IOAPIC.</summary>
    Irq,
    /// <summary>A message-signalled interrupt on its way to the APIC bus.</summary>
    Msi,
    /// <summary>A device timer being armed.</summary>
    Timer,
    /// <summary>A block device's read request: <see cref="FaultPoint.Address"/> its first sector, <see cref="FaultPoint.Value"/> its bytes.</summary>
    BlkRead,
    /// <summary>A block device's write (also flush, discard, write-zeroes) request, addressed as <see cref="BlkRead"/>.</summary>
    BlkWrite,
    /// <summary>A frame the guest sends: <see cref="FaultPoint.Address"/> its length.</summary>
    NetTx,
    /// <summary>A frame on its way to the guest: <see cref="FaultPoint.Address"/> its length.</summary>
    NetRx,
}

/// <summary>
/// One event the engine decides about. <paramref name="Address"/> is the port or MMIO address of an access,
/// the GSI of an IRQ, the MSI address of an MSI; <paramref name="Value"/> the written value or MSI data.
/// </summary>
public readonly record struct FaultPoint(FaultKind Kind, string Device, ulong Address, ulong Value = 0)
{
    public static string KindName(FaultKind kind) => kind switch
    {
        FaultKind.PioRead => "pio.read",
        FaultKind.PioWrite => "pio.write",
        FaultKind.MmioRead => "mmio.read",
        FaultKind.MmioWrite => "mmio.write",
        FaultKind.Irq => "irq",
        FaultKind.Msi => "msi",
        FaultKind.Timer => "timer",
        FaultKind.BlkRead => "blk.read",
        FaultKind.BlkWrite => "blk.write",
        FaultKind.NetTx => "net.tx",
        FaultKind.NetRx => "net.rx",
        _ => kind.ToString(),
    };

    public static bool TryParseKind(string text, out FaultKind kind)
    {
        foreach (var k in Enum.GetValues<FaultKind>())
            if (KindName(k) == text)
            {
                kind = k;
                return true;
            }
        kind = default;
        return false;
    }

    public bool IsRead => Kind is FaultKind.PioRead or FaultKind.MmioRead;
    public bool IsWrite => Kind is FaultKind.PioWrite or FaultKind.MmioWrite;

    public static bool IsBlock(FaultKind? kind) => kind is FaultKind.BlkRead or FaultKind.BlkWrite;
    public static bool IsNet(FaultKind? kind) => kind is FaultKind.NetTx or FaultKind.NetRx;

    /// <summary>The last sector a block request covers (its first when it moves no data).</summary>
    public ulong LastSector => Address + Math.Max(1, (Value + 511) / 512) - 1;
}

/// <summary>What the engine decided for one event.</summary>
public enum FaultVerdict : byte
{
    /// <summary>Let it through unchanged.</summary>
    Pass,
    /// <summary>Lose it: a write or interrupt never arrives, a read is not answered by the device (reads all ones), a timer never fires.</summary>
    Drop,
    /// <summary>Deliver it <see cref="FaultDecision.Delay"/> later (negative for a timer: early).</summary>
    Delay,
    /// <summary>Deliver it twice.</summary>
    Duplicate,
    /// <summary>Deliver it with <see cref="FaultDecision.Value"/> as the value (a write's or MSI's data, a read's answer).</summary>
    Replace,
    /// <summary>Deliver it with its value XOR <see cref="FaultDecision.Value"/> (a mask, or one random bit).</summary>
    Corrupt,
    /// <summary>Crash the receiving device actor (it fails; its supervisor decides).</summary>
    Crash,
    /// <summary>
    /// Not a verdict on an event but a source of them: while the rule is in force (added, engine not paused),
    /// its GSI is held asserted, a stuck level interrupt that the controllers deliver again after every EOI.
    /// </summary>
    Storm,
    /// <summary>A block request moves only its first <see cref="FaultDecision.Value"/> bytes, then fails (a short read, a torn write).</summary>
    Short,
}

/// <summary>
/// The verdict and its parameters; <see cref="Rule"/> names the rule that fired (null for Pass). <see cref="Value"/>
/// is the replacement, the XOR mask, or for <see cref="FaultVerdict.Short"/> and a block device's
/// <see cref="FaultVerdict.Crash"/> the bytes moved before the fault.
/// </summary>
public readonly record struct FaultDecision(FaultVerdict Verdict, string? Rule = null, TimeSpan Delay = default, ulong Value = 0)
{
    public static readonly FaultDecision Pass = new(FaultVerdict.Pass);

    /// <summary>For a read: the answer after the fault (the device's <paramref name="answer"/> when none applies).</summary>
    public ulong ApplyToRead(ulong answer, ulong allOnes) => Verdict switch
    {
        FaultVerdict.Drop => allOnes,
        FaultVerdict.Replace => Value & allOnes,
        FaultVerdict.Corrupt => (answer ^ Value) & allOnes,
        _ => answer,
    };

    /// <summary>For a write or an MSI: the value delivered after the fault.</summary>
    public ulong ApplyToValue(ulong value) => Verdict switch
    {
        FaultVerdict.Replace => Value,
        FaultVerdict.Corrupt => value ^ Value,
        _ => value,
    };
}
