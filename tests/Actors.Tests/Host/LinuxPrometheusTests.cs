using Actorvisor.Actors.Tests.Telemetry;
using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// Issue #7's end-to-end check on the real guest: Debian's Prometheus (/usr/bin/prometheus, on 127.0.0.1) scrapes
/// the `--metrics` endpoint of <see cref="LinuxBootFixture"/>'s Linux boot every second, and its HTTP API, asked
/// over the boot's span after the run, holds a non-zero exit rate and a non-zero local-timer interrupt rate for
/// that VM.
/// </summary>
[Collection(GuestBoot.Collection)]
public class LinuxPrometheusTests(LinuxBootFixture fixture, ITestOutputHelper output)
{
    [SkippableFact]
    public void DebiansPrometheusScrapesALinuxBootAndSeesNonZeroExitAndTimerRates()
    {
        Skip.If(fixture.SkipReason is not null, fixture.SkipReason);
        var recording = fixture.Prometheus!;
        Skip.If(recording.SkipReason is not null, recording.SkipReason);
        output.WriteLine($"boot: marker after {fixture.Result!.MarkerAfter?.TotalSeconds:F1} s, run {fixture.Result.Total.TotalSeconds:F1} s");
        Assert.True(recording.Error is null, $"{recording.Error}\nPrometheus's log:\n{recording.Log}");

        var exits = Only(recording, LinuxBootFixture.ExitRateQuery);
        // A Linux boot with a 10 s and a 1 s sleep lasts well over 12 s: Prometheus scraped it many times.
        Assert.True(exits.Points.Count >= 5, $"only {exits.Points.Count} exit-rate points over the boot");
        Assert.True(exits.Max > 0, $"the exit rate never rose above 0: {string.Join(", ", exits.Points.Select(p => p.Value))}");

        var timer = Only(recording, LinuxBootFixture.TimerRateQuery);
        Assert.True(timer.Max > 0, $"the local timer's interrupt rate never rose above 0: {string.Join(", ", timer.Points.Select(p => p.Value))}");
    }

    /// <summary>The query's one series (a sum over the VM's labels), printed.</summary>
    private PrometheusSeries Only(PrometheusRecording recording, string query)
    {
        var series = recording.Series[query];
        Assert.True(series.Count == 1, $"{series.Count} series for {query}\nPrometheus's log:\n{recording.Log}");
        var s = series[0];
        output.WriteLine($"{query}: {s.Points.Count} points, max {s.Max:F1}/s");
        return s;
    }
}
