using Actorvisor.Host.Vm;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>The lifecycle table and the suspend barrier, without actors.</summary>
public class VmLifecycleTests
{
    private static VmLifecycle Running()
    {
        var l = new VmLifecycle();
        l.Move(VmState.Running, "built");
        return l;
    }

    [Fact]
    public void SuspendCompletesOnlyWhenEveryVcpuHasAnswered()
    {
        var l = Running();
        Assert.False(l.BeginSuspend([0, 1, 2], "test", out var refusal));
        Assert.Null(refusal);
        Assert.Equal(VmState.Suspending, l.State);
        Assert.False(l.CpuSuspended(2));
        Assert.False(l.CpuSuspended(0));
        Assert.Equal([1], l.PendingCpus);
        Assert.Equal(VmState.Suspending, l.State);
        Assert.True(l.CpuSuspended(1));
        Assert.Equal(VmState.Suspended, l.State);
        Assert.Equal([0, 1, 2], l.SuspendedCpus);
    }

    [Fact]
    public void AnInactiveVcpuIsNotWaitedForAndNotListedAsSuspended()
    {
        var l = Running();
        l.BeginSuspend([0, 1], "test", out _);
        Assert.False(l.CpuSuspended(0));
        Assert.True(l.CpuInactive(1));
        Assert.Equal(VmState.Suspended, l.State);
        Assert.Equal([0], l.SuspendedCpus);
    }

    [Fact]
    public void RepeatedOrUnknownAnswersDoNotCompleteASuspend()
    {
        var l = Running();
        l.BeginSuspend([0, 1], "test", out _);
        Assert.False(l.CpuSuspended(0));
        Assert.False(l.CpuSuspended(0));
        Assert.False(l.CpuSuspended(7));
        Assert.False(l.CpuInactive(0));
        Assert.Equal(VmState.Suspending, l.State);
    }

    [Fact]
    public void ASuspendWithNoVcpusCompletesAtOnce()
    {
        var l = Running();
        Assert.True(l.BeginSuspend([], "test", out _));
        Assert.Equal(VmState.Suspended, l.State);
    }

    [Theory]
    [InlineData(VmState.Starting, VmState.Suspending)]
    [InlineData(VmState.Running, VmState.Suspended)]
    [InlineData(VmState.Running, VmState.Starting)]
    [InlineData(VmState.Suspending, VmState.Running)]
    [InlineData(VmState.Resetting, VmState.Running)]
    [InlineData(VmState.PoweredOff, VmState.Running)]
    [InlineData(VmState.PoweredOff, VmState.Starting)]
    [InlineData(VmState.Failed, VmState.Resetting)]
    public void TheTableRefusesTransitionsItDoesNotList(VmState from, VmState to) => Assert.False(VmLifecycle.Allowed(from, to));

    [Fact]
    public void ARefusedRequestSaysWhyAndChangesNothing()
    {
        var l = Running();
        l.Move(VmState.PoweredOff, "test");
        Assert.False(l.TryMove(VmState.Running, "resume", out var refusal));
        Assert.Equal("the VM is powered-off; it cannot become running", refusal);
        Assert.Equal(VmState.PoweredOff, l.State);
        Assert.False(l.BeginSuspend([0], "suspend", out refusal));
        Assert.NotNull(refusal);
    }

    [Fact]
    public void AResetCyclePassesThroughResettingAndStartingAndReportsEachTransition()
    {
        var l = Running();
        var seen = new List<(VmState, VmState)>();
        l.Transitioned += (from, to, _) => seen.Add((from, to));
        l.BeginSuspend([0], "suspend", out _);
        l.CpuSuspended(0);
        l.Move(VmState.Resetting, "force-reset");
        Assert.Empty(l.SuspendedCpus);
        l.Move(VmState.Starting, "rebuild");
        l.Move(VmState.Running, "built");
        Assert.Equal(
        [
            (VmState.Running, VmState.Suspending), (VmState.Suspending, VmState.Suspended), (VmState.Suspended, VmState.Resetting),
            (VmState.Resetting, VmState.Starting), (VmState.Starting, VmState.Running),
        ], seen);
    }

    [Theory]
    [InlineData(VmExitCode.Reset, VmState.Resetting)]
    [InlineData(VmExitCode.PowerOff, VmState.PoweredOff)]
    [InlineData(VmExitCode.Halted, VmState.PoweredOff)]
    [InlineData(VmExitCode.GuestRequested, VmState.PoweredOff)]
    [InlineData(VmExitCode.TripleFault, VmState.Failed)]
    [InlineData(VmExitCode.Error, VmState.Failed)]
    public void EachExitCodeEndsInItsState(VmExitCode code, VmState state) => Assert.Equal(state, VmLifecycle.StateAfter(code));
}
