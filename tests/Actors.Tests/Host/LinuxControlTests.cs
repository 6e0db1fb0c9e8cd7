namespace Actorvisor.Actors.Tests.Host;

/// <summary>Debian's kernel under `actorvisor ctl`: suspend and resume, an injected NMI, the RTC set from the host, force-poweroff.</summary>
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
    public void ForcePoweroffEndsTheRunWithStatus1()
    {
        RequireBoot();
        Assert.Equal(1, boot.ExitStatus);
    }
}
