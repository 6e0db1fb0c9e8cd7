namespace Actorvisor.Actors.Devices.Hpet;

/// <summary>
/// Register values of an <see cref="Hpet"/> (no handles, no host timestamps): the main counter as it read at
/// the save, which a restore resumes from (running or halted as <see cref="Configuration"/> says).
/// </summary>
public sealed record HpetState(ulong Configuration, ulong InterruptStatus, ulong Counter, HpetTimerState[] Timers, int[] RaisedLines)
{
    /// <summary>What a freshly built HPET saves: halted at 0, timers unconfigured, comparators all ones.</summary>
    public static HpetState PowerOn { get; } = new(0, 0, 0,
        Enumerable.Range(0, HpetRegisters.TimerCount).Select(_ => HpetTimerState.PowerOn).ToArray(), []);
}

/// <summary>One comparator: its registers, how far it has been compared, and edges held back by the minimum interval.</summary>
public sealed record HpetTimerState(ulong Config, ulong Comparator, ulong Period, ulong FsbRoute, ulong Evaluated, long PendingEdges)
{
    public static HpetTimerState PowerOn { get; } =
        new(HpetRegisters.TimerCapabilities, HpetRegisters.ComparatorPowerOn, 0, 0, 0, 0);
}
