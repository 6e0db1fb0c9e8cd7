using Actorvisor.Kernel.Faults;
using Actorvisor.Kernel.Time;
using Microsoft.Extensions.Time.Testing;

namespace Actorvisor.Kernel.Tests.Faults;

public class FaultEngineTests
{
    private static readonly FaultPoint UartWrite = new(FaultKind.PioWrite, "uart-0", 0x3F8, 0x41);

    private static FaultRule Rule(string name, FaultAction action, FaultTrigger? trigger = null, FaultTarget? target = null,
        string? inState = null, string? toState = null) =>
        new(name, target ?? new FaultTarget("uart-*", FaultKind.PioWrite, 0x3F8, 0x3FF), action, trigger ?? FaultTrigger.Always, inState, toState);

    private static FaultVerdict[] Run(FaultEngine engine, int n, FaultPoint? point = null) =>
        Enumerable.Range(0, n).Select(_ => engine.Decide(point ?? UartWrite, 1).Verdict).ToArray();

    [Fact]
    public void AfterSkipsTheFirstMatchesEveryFiresOnEachNthOfTheRestAndLimitCapsThem()
    {
        var engine = new FaultEngine(1, new FakeTimeProvider(),
            [Rule("r", new FaultAction(FaultVerdict.Drop), new FaultTrigger(After: 2, Every: 3, Limit: 2))]);
        var v = Run(engine, 12);
        // Matches 3, 6 fire (after 2, every 3rd of the rest: 3, 6, 9, 12 ...), then the limit of 2 stops it.
        var fired = v.Select((x, i) => (x, i + 1)).Where(t => t.x == FaultVerdict.Drop).Select(t => t.Item2);
        Assert.Equal([3, 6], fired);
        var report = Assert.Single(engine.Report());
        Assert.Equal((12L, 2L), (report.Matched, report.Fired));
    }

    [Fact]
    public void TheSameSeedGivesTheSameDecisionsAndAnotherSeedOthers()
    {
        FaultVerdict[] With(ulong seed) => Run(new FaultEngine(seed, new FakeTimeProvider(),
            [Rule("coin", new FaultAction(FaultVerdict.Drop), new FaultTrigger(Probability: 0.5))]), 200);
        var a = With(42);
        Assert.Equal(a, With(42));
        Assert.NotEqual(a, With(43));
        // About half, as a fair coin over 200 events (binomial: 100 ± 40 is beyond 5 sigma).
        Assert.InRange(a.Count(x => x == FaultVerdict.Drop), 60, 140);
    }

    [Fact]
    public void TheTargetSelectsDeviceKindAndRangeWithWildcards()
    {
        var engine = new FaultEngine(1, new FakeTimeProvider(), [Rule("r", new FaultAction(FaultVerdict.Drop))]);
        Assert.Equal(FaultVerdict.Drop, engine.Decide(UartWrite).Verdict);
        Assert.Equal(FaultVerdict.Drop, engine.Decide(UartWrite with { Device = "uart-1", Address = 0x3FF }).Verdict);
        Assert.Equal(FaultVerdict.Pass, engine.Decide(UartWrite with { Device = "pit" }).Verdict);
        Assert.Equal(FaultVerdict.Pass, engine.Decide(UartWrite with { Kind = FaultKind.PioRead }).Verdict);
        Assert.Equal(FaultVerdict.Pass, engine.Decide(UartWrite with { Address = 0x3F7 }).Verdict);
        Assert.True(Glob.Matches("u?rt-*", "uart-12"));
        Assert.False(Glob.Matches("uart-?", "uart-12"));
    }

    [Fact]
    public void TheWindowIsGuestTimeSinceTheEngineStarted()
    {
        var clock = new FakeTimeProvider();
        var engine = new FaultEngine(1, clock, [Rule("w", new FaultAction(FaultVerdict.Drop),
            new FaultTrigger(WindowFrom: TimeSpan.FromSeconds(1), WindowTo: TimeSpan.FromSeconds(2)))]);
        Assert.Equal(FaultVerdict.Pass, engine.Decide(UartWrite).Verdict);
        clock.Advance(TimeSpan.FromMilliseconds(1500));
        Assert.Equal(FaultVerdict.Drop, engine.Decide(UartWrite).Verdict);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(FaultVerdict.Pass, engine.Decide(UartWrite).Verdict);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), engine.Report()[0].FirstFired);
    }

    [Fact]
    public void StatesChainRulesAsBlkdebugDoes()
    {
        // The first write is let through but moves the engine to "broken", where every write is dropped.
        var engine = new FaultEngine(1, new FakeTimeProvider(),
        [
            Rule("arm", new FaultAction(FaultVerdict.Duplicate), new FaultTrigger(Limit: 1), inState: "start", toState: "broken"),
            Rule("break", new FaultAction(FaultVerdict.Drop), inState: "broken"),
        ]);
        Assert.Equal([FaultVerdict.Duplicate, FaultVerdict.Drop, FaultVerdict.Drop], Run(engine, 3));
        Assert.Equal("broken", engine.State);
    }

    [Fact]
    public void CorruptXorsAReadsAnswerAndReplaceFixesIt()
    {
        var engine = new FaultEngine(7, new FakeTimeProvider(),
        [
            Rule("flip", new FaultAction(FaultVerdict.Corrupt, XorMask: 0xF0), new FaultTrigger(Limit: 1), new FaultTarget(Kind: FaultKind.PioRead)),
            Rule("fix", new FaultAction(FaultVerdict.Replace, Value: 0x1234), target: new FaultTarget(Kind: FaultKind.PioRead)),
        ]);
        var read = new FaultPoint(FaultKind.PioRead, "rtc", 0x71);
        Assert.Equal(0x5Au ^ 0xF0u, engine.Decide(read, 1).ApplyToRead(0x5A, 0xFF));
        Assert.Equal(0x34u, engine.Decide(read, 1).ApplyToRead(0x5A, 0xFF));
        Assert.Equal(0xFFu, new FaultDecision(FaultVerdict.Drop).ApplyToRead(0x5A, 0xFF));
    }

    [Fact]
    public void ARandomBitFlipsExactlyOneBitOfTheAccessWidth()
    {
        var engine = new FaultEngine(3, new FakeTimeProvider(),
            [Rule("bit", new FaultAction(FaultVerdict.Corrupt, RandomBit: true), target: new FaultTarget(Kind: FaultKind.PioWrite))]);
        for (var i = 0; i < 100; i++)
        {
            var d = engine.Decide(UartWrite, 2);
            Assert.Equal(1, System.Numerics.BitOperations.PopCount(d.Value));
            Assert.True(d.Value < 0x10000);
        }
    }

    [Fact]
    public void PausedOrEmptyEnginesAreInactiveAndPass()
    {
        var engine = new FaultEngine(1, new FakeTimeProvider());
        Assert.False(engine.Active);
        engine.Add(Rule("r", new FaultAction(FaultVerdict.Drop)));
        Assert.True(engine.Active);
        engine.Pause(true);
        Assert.Equal(FaultVerdict.Pass, engine.Decide(UartWrite).Verdict);
        engine.Pause(false);
        Assert.Throws<ArgumentException>(() => engine.Add(Rule("r", new FaultAction(FaultVerdict.Drop))));
        Assert.True(engine.Remove("r"));
        Assert.False(engine.Active);
    }

    [Theory]
    [InlineData(FaultVerdict.Delay, FaultKind.PioRead, "cannot be delayed")]
    [InlineData(FaultVerdict.Duplicate, FaultKind.Timer, "only writes and interrupts")]
    [InlineData(FaultVerdict.Replace, FaultKind.Irq, "no value to change")]
    [InlineData(FaultVerdict.Crash, FaultKind.Msi, "crash needs an access")]
    public void ActionsThatCannotApplyToTheKindAreRejected(FaultVerdict verdict, FaultKind kind, string message)
    {
        var rule = new FaultRule("bad", new FaultTarget(Kind: kind), new FaultAction(verdict, Delay: TimeSpan.FromMilliseconds(1)), FaultTrigger.Always);
        Assert.Contains(rule.Validate(), p => p.Contains(message) && p.Contains("rule 'bad'"));
    }

    [Fact]
    public void UnknownDevicesBadRangesAndProbabilitiesAreNamed()
    {
        var rule = new FaultRule("r", new FaultTarget("floppy", FaultKind.PioWrite, 0x10, 0x01), new FaultAction(FaultVerdict.Drop),
            new FaultTrigger(Probability: 1.5));
        var problems = rule.Validate(new HashSet<string> { "uart-0", "pit" }).ToArray();
        Assert.Contains(problems, p => p.Contains("no device is named 'floppy'") && p.Contains("pit, uart-0"));
        Assert.Contains(problems, p => p.Contains("range 0x10-0x1 is empty"));
        Assert.Contains(problems, p => p.Contains("probability 1.5"));
    }

    [Fact]
    public void TimersCanBeDroppedDelayedOrAdvancedButNeverIntoThePast()
    {
        var clock = new FakeTimeProvider();
        var inner = new DeterministicTimerService(clock);
        var engine = new FaultEngine(1, clock,
        [
            new FaultRule("lose", new FaultTarget("pit", FaultKind.Timer), new FaultAction(FaultVerdict.Drop), new FaultTrigger(Limit: 1)),
            new FaultRule("late", new FaultTarget("pit", FaultKind.Timer), new FaultAction(FaultVerdict.Delay, Delay: TimeSpan.FromMilliseconds(5)), new FaultTrigger(Limit: 1)),
            new FaultRule("early", new FaultTarget("pit", FaultKind.Timer), new FaultAction(FaultVerdict.Delay, Delay: TimeSpan.FromMilliseconds(-50)), new FaultTrigger(Limit: 1)),
        ]);
        var timers = new FaultingTimerService(inner, engine, "pit");
        var ms = clock.TimestampFrequency / 1000;
        var t0 = clock.GetTimestamp();
        var fired = new List<string>();
        timers.Schedule(t0 + 10 * ms, () => fired.Add("lost"));
        timers.Schedule(t0 + 10 * ms, () => fired.Add("late"));
        timers.Schedule(t0 + 20 * ms, () => fired.Add("early"));
        timers.Schedule(t0 + 30 * ms, () => fired.Add("plain"));
        inner.RunDue(); // at 0: the early one, clamped to now
        Assert.Equal(["early"], fired);
        clock.Advance(TimeSpan.FromMilliseconds(14));
        inner.RunDue();
        Assert.Equal(["early"], fired);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        inner.RunDue();
        Assert.Equal(["early", "late"], fired);
        clock.Advance(TimeSpan.FromSeconds(1));
        inner.RunDue();
        Assert.Equal(["early", "late", "plain"], fired);
    }

    [Fact]
    public void AStormRuleIsASourceNotAVerdictAndItsGsiIsHeldWhileItIsInForce()
    {
        var engine = new FaultEngine(1, new FakeTimeProvider());
        var changes = 0;
        engine.RulesChanged += () => changes++;
        var storm = new FaultRule("storm", new FaultTarget(null, FaultKind.Irq, 9, 9), new FaultAction(FaultVerdict.Storm), FaultTrigger.Always);
        Assert.Empty(storm.Validate());
        engine.Add(storm);
        Assert.Equal([9], engine.StormGsis);
        // Interrupts on the stormed line are not decided by it: they pass, and are not counted.
        Assert.Equal(FaultVerdict.Pass, engine.Decide(new FaultPoint(FaultKind.Irq, "acpi-pm", 9)).Verdict);
        Assert.Equal(0, engine.Report().Single().Matched);
        engine.Pause(true);
        Assert.Empty(engine.StormGsis);
        engine.Pause(false);
        Assert.Equal([9], engine.StormGsis);
        Assert.True(engine.Remove("storm"));
        Assert.Empty(engine.StormGsis);
        Assert.Equal(4, changes);
    }

    [Fact]
    public void ABlockRequestMatchesASectorRangeItOverlapsAndAShortOrCrashCarriesItsBytes()
    {
        var target = new FaultTarget("virtio-blk-*", FaultKind.BlkWrite, 100, 103);
        FaultPoint Write(ulong sector, ulong bytes) => new(FaultKind.BlkWrite, "virtio-blk-3", sector, bytes);
        Assert.False(target.Matches(Write(96, 2048)));  // 96-99
        Assert.True(target.Matches(Write(98, 2048)));   // 98-101
        Assert.True(target.Matches(Write(103, 512)));
        Assert.False(target.Matches(Write(104, 512)));
        Assert.True(target.Matches(Write(100, 0)));     // a flush-like request covers its first sector
        var engine = new FaultEngine(1, new FakeTimeProvider(),
        [
            new FaultRule("short", target, new FaultAction(FaultVerdict.Short, Bytes: 1024), new FaultTrigger(Limit: 1)),
            new FaultRule("torn", target, new FaultAction(FaultVerdict.Crash, Bytes: 512), FaultTrigger.Always),
        ]);
        Assert.Equal(new FaultDecision(FaultVerdict.Short, "short", default, 1024), engine.Decide(Write(100, 4096)));
        Assert.Equal(new FaultDecision(FaultVerdict.Crash, "torn", default, 512), engine.Decide(Write(100, 4096)));
        Assert.Equal(FaultVerdict.Pass, engine.Decide(Write(200, 4096)).Verdict);
    }
}
