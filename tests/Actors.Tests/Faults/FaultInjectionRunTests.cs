using System.Text;
using System.Text.RegularExpressions;
using Actorvisor.Actors.Tests.Deterministic;
using Actorvisor.Host;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Faults;

/// <summary>
/// Fault rules through the whole program (`actorvisor run --faults FILE`) on the deterministic schedule's test
/// kernel: a 64-bit guest that takes six 10 ms PIT interrupts through the 8259 and prints the TSC in each.
/// </summary>
public partial class FaultInjectionRunTests
{
    private const double Period = 11932 * 1_000_000_000.0 / 1_193_182;

    private static (int Exit, string Console, string Stderr) Run(string scenario, params string[] extra)
    {
        var kernel = GuestImages.WriteTemp(DeterministicRunTests.Kernel(), ".elf");
        var faults = Path.GetTempFileName();
        try
        {
            File.WriteAllText(faults, scenario);
            using var stdout = new MemoryStream();
            var stderr = new StringWriter();
            string[] args = ["run", "--kernel", kernel, "-m", "64M", "--no-reboot", "--device", "isa-debug-exit", "--faults", faults, .. extra];
            var exit = ActorvisorCli.Run(args, stdout, stderr);
            return (exit, Encoding.ASCII.GetString(stdout.ToArray()), stderr.ToString());
        }
        finally
        {
            File.Delete(kernel);
            File.Delete(faults);
        }
    }

    [GeneratedRegex(@"digest ([0-9a-f]{64})")]
    private static partial Regex Digest();

    [Fact]
    public void DroppingEverySecondPitInterruptDoublesEveryOtherGapAndTheReportCountsIt()
    {
        const string scenario = """
            rules:
              - name: lose-every-second-tick
                gsi: 0
                action: drop
                every: 2
            """;
        var a = Run(scenario, "--deterministic", "--fault-seed", "5");
        Assert.True(a.Exit == 1, $"exit {a.Exit}: {a.Stderr}");
        var tsc = DeterministicRunTests.TscValues(a.Console);
        Assert.Equal(DeterministicRunTests.Ticks, tsc.Length);
        // The PIT pulses IRQ 0 once per period; every second pulse is lost, so each interrupt comes two periods after the last.
        for (var i = 1; i < tsc.Length; i++) Assert.InRange(tsc[i] - tsc[i - 1], 2 * Period - 2, 2 * Period + 2);
        Assert.Matches(@"fault rule 'lose-every-second-tick': matched \d+, fired \d+", a.Stderr);
        var b = Run(scenario, "--deterministic", "--fault-seed", "5");
        Assert.Equal(a.Console, b.Console);
        Assert.Equal(Digest().Match(a.Stderr).Value, Digest().Match(b.Stderr).Value);
    }

    [Fact]
    public void AProbabilisticRuleRepeatsUnderTheSameSeedInTheDeterministicSchedule()
    {
        const string scenario = """
            rules:
              - name: coin
                kind: irq
                action: drop
                probability: 0.5
            """;
        var a = Run(scenario, "--deterministic", "--fault-seed", "11");
        var b = Run(scenario, "--deterministic", "--fault-seed", "11");
        Assert.True(a.Exit == 1, $"exit {a.Exit}: {a.Stderr}");
        Assert.Equal(a.Console, b.Console);
        Assert.Equal(Digest().Match(a.Stderr).Value, Digest().Match(b.Stderr).Value);
        Assert.DoesNotContain("fault seed", a.Stderr); // given, so not printed
    }

    [Fact]
    public void LatePitTimersShiftEveryInterruptByTheDelay()
    {
        // Each expiry the PIT arms comes 3 ms late; the PIT then pulses and arms its next period boundary,
        // which comes 3 ms late again: every interrupt moves by 3 ms, the gaps stay one period.
        const string scenario = """
            rules:
              - name: late-ticks
                device: pit
                kind: timer
                action: delay
                delay: 3ms
            """;
        var run = Run(scenario, "--deterministic");
        Assert.True(run.Exit == 1, $"exit {run.Exit}: {run.Stderr}");
        var late = DeterministicRunTests.TscValues(run.Console);
        var plain = DeterministicRunTests.TscValues(Run("rules: []", "--deterministic").Console);
        Assert.Equal(plain.Length, late.Length);
        for (var i = 0; i < late.Length; i++) Assert.InRange(late[i] - plain[i], 3_000_000 - 2, 3_000_000 + 2);
        Assert.Contains("fault seed", run.Stderr); // none given: printed so the run can be repeated
    }

    [Fact]
    public void ARuleForADeviceTheVmDoesNotHaveEndsTheRunWithAClearError()
    {
        var run = Run("rules:\n  - name: x\n    device: floppy\n    action: drop\n");
        Assert.Equal(4, run.Exit);
        Assert.Contains("no device is named 'floppy'", run.Stderr);
    }
}
