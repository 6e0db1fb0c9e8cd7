using Actorvisor.Kernel.Telemetry;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>The run-time event-class switch: globs, exclusions, the one-field summary the hot paths read.</summary>
[Collection(TelemetryCollection.Name)]
public sealed class TraceSwitchTests : IDisposable
{
    [Fact]
    public void WildcardsEnableExactlyTheClassesTheyName()
    {
        TraceSwitches.SetPatterns("irq.*,io.uart*");
        Assert.True(TraceSwitches.IsEnabled("irq.uart-0"));
        Assert.True(TraceSwitches.IsEnabled("irq.pit"));
        Assert.True(TraceSwitches.IsEnabled("io.uart-0"));
        Assert.True(TraceSwitches.IsEnabled("io.uart-1"));
        Assert.False(TraceSwitches.IsEnabled("io.ioapic"));
        Assert.False(TraceSwitches.IsEnabled("io.pit"));
        Assert.False(TraceSwitches.IsEnabled("vm.lifecycle"));
        Assert.False(TraceSwitches.IsEnabled("irq"));
        Assert.Equal(TraceSwitches.Kinds.Io | TraceSwitches.Kinds.Irq, TraceSwitches.Active);
    }

    [Fact]
    public void AnExclusionAfterAWildcardDisablesWhatItMatchesAndTheLastMatchWins()
    {
        TraceSwitches.SetPatterns("io.*,-io.pit,io.pi?");
        Assert.True(TraceSwitches.IsEnabled("io.pit"), "the later io.pi? turns it on again");
        TraceSwitches.SetPatterns("io.*,-io.p*");
        Assert.False(TraceSwitches.IsEnabled("io.pit"));
        Assert.False(TraceSwitches.IsEnabled("io.pic"));
        Assert.True(TraceSwitches.IsEnabled("io.rtc"));
        Assert.Equal(TraceSwitches.Kinds.Io, TraceSwitches.Active);
    }

    [Fact]
    public void SwitchingOffLeavesNothingActiveAndCachedAnswersFollowTheChange()
    {
        var uart = new EventClass("io.uart-0");
        TraceSwitches.SetPatterns("io.uart-0");
        Assert.True(uart.Enabled);
        TraceSwitches.SetPatterns("");
        Assert.False(uart.Enabled);
        Assert.Equal(TraceSwitches.Kinds.None, TraceSwitches.Active);
        TraceControl.Instance.SetClasses("*");
        Assert.True(uart.Enabled);
        Assert.Equal(TraceSwitches.Kinds.Io | TraceSwitches.Kinds.Irq | TraceSwitches.Kinds.Lifecycle | TraceSwitches.Kinds.Fault,
            TraceSwitches.Active);
        Assert.Equal("*", TraceControl.Instance.Status().Patterns);
    }

    [Theory]
    [InlineData("io.uart 0")]
    [InlineData("-")]
    [InlineData("irq.[0-9]")]
    public void AMalformedPatternIsRejectedAndTheOldOnesStay(string bad)
    {
        TraceSwitches.SetPatterns("irq.*");
        Assert.Throws<FormatException>(() => TraceControl.Instance.SetClasses(bad));
        Assert.True(TraceSwitches.IsEnabled("irq.pit"));
    }

    [Fact]
    public void TheSamplingRatioKeepsItsShareOfDecisionsWithinABound()
    {
        TraceControl.Instance.SetSampleRatio(0.1);
        var kept = Enumerable.Range(0, 20000).Count(_ => TraceSwitches.Sample());
        // Binomial(20000, 0.1): mean 2000, sd 42; the bound is over 7 sd.
        Assert.InRange(kept, 1700, 2300);
        TraceControl.Instance.SetSampleRatio(0);
        Assert.DoesNotContain(true, Enumerable.Range(0, 1000).Select(_ => TraceSwitches.Sample()));
        Assert.Throws<ArgumentOutOfRangeException>(() => TraceControl.Instance.SetSampleRatio(1.5));
    }

    public void Dispose()
    {
        TraceSwitches.SetPatterns("");
        TraceSwitches.SampleRatio = 1;
    }
}
