namespace Actorvisor.Actors.Tests.Host;

/// <summary>Debian's kernel under `actorvisor ctl`: suspend and resume, an injected NMI, hlt_exit off and on, the RTC set from the host, force-reset (the guest boots again, the RTC kept), force-poweroff.</summary>
[Collection(GuestBoot.Collection)]
public class LinuxControlTests(LinuxControlFixture boot) : IClassFixture<LinuxControlFixture>
{
    private void RequireBoot()
    {
        Skip.If(boot.SkipReason is not null, boot.SkipReason);
        Assert.True(boot.Failure is null, boot.Failure);
    }

    [SkippableFact]
    public void ASuspendedGuestPrintsNothingAndGoesOnAfterResume()
    {
        RequireBoot();
        Assert.Equal("suspended", boot.SuspendState);
        Assert.True(boot.TicksBeforeSuspend >= 3);
        Assert.Equal(0, boot.TicksWhileSuspended);
        Assert.True(boot.TicksAfterResume >= 3);
    }

    [SkippableFact]
    public void AnInjectedNmiIsLoggedByTheGuest()
    {
        RequireBoot();
        Assert.Contains("Uhhuh. NMI received for unknown reason", boot.Console);
    }

    [SkippableFact]
    public void TheRtcTimeSetFromTheHostIsWhatHwclockReads()
    {
        RequireBoot();
        var line = boot.Console.Split('\n').First(l => l.StartsWith("HWCLOCK:", StringComparison.Ordinal));
        Assert.Contains("Nov 14 22:13:", line);
        Assert.Contains("2023", line);
    }

    [SkippableFact]
    public void WithHltExitOffTheIdleGuestRunsOnWithoutHaltExits()
    {
        RequireBoot();
        Assert.Equal("off", boot.GetcapHltExit);
        Assert.True(boot.TicksWhileHltExitOff >= 3);
        Assert.Equal(0, boot.HaltExitsWhileOff);
        Assert.True(boot.HaltExitsAfterOn > 0, $"{boot.HaltExitsAfterOn} halt exits in a second of an idle guest with hlt_exit on");
    }

    [SkippableFact]
    public void ForceResetBootsTheGuestAgainWithTheRtcKept()
    {
        RequireBoot();
        Assert.True(boot.RebootedAfterForceReset);
        // The second boot's kernel reads the RTC the host set before the reset (rtc_cmos: hctosys).
        var second = boot.Console[boot.Console.IndexOf("CONTROL-PROBE-END", StringComparison.Ordinal)..];
        Assert.Contains("setting system clock to 2023-11-14", second);
    }

    [SkippableFact]
    public void ForcePoweroffEndsTheRunWithStatus1()
    {
        RequireBoot();
        Assert.Equal(1, boot.ExitStatus);
    }
}
