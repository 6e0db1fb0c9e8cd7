using Akka.Actor;
using Akka.Configuration;
using Actorvisor.Actors.Cpu.Deterministic;

namespace Actorvisor.Host.Vm;

/// <summary>
/// Runs one VM to its end in a fresh ActorSystem: creates /user/vm-&lt;name&gt; (vm-&lt;name&gt;-boot&lt;n&gt; after a reboot), waits for its
/// <see cref="VmProtocol.VmExited"/>, and returns the outcome. A guest reboot resets the VM in place: a new
/// supervisor builds every device and vCPU again from power-on state (all but the CMOS, kept in a
/// <see cref="VmPersistentState"/>), unless the config says
/// <see cref="VmConfig.NoReboot"/>. Console input is pumped by a background thread to whichever VM
/// supervisor is current.
/// </summary>
public static class VmRunner
{
    /// <summary>
    /// stdout carries the guest's console, so Akka's own logging goes to stderr, warnings and up only.
    /// </summary>
    internal static readonly Config AkkaConfig = ConfigurationFactory.ParseString("""
        akka {
          loglevel = WARNING
          stdout-loglevel = OFF
          loggers = ["Actorvisor.Host.StderrLogger, actorvisor"]
          log-dead-letters = off
          log-dead-letters-during-shutdown = off
          coordinated-shutdown.run-by-clr-shutdown-hook = off
        }
        """).WithFallback(InlineDispatcher.Config);

    /// <param name="progress">Where a reboot is announced (stderr), null for silence.</param>
    /// <param name="totals">Where the vCPUs add what they executed, over every boot (null: not counted).</param>
    /// <param name="run">The run's host-side handle (lifecycle, current supervisor, quit) and, for several VMs in
    /// one process, their shared ActorSystem; null: a fresh one with a system of its own.</param>
    public static VmProtocol.VmExited Run(VmConfig config, TextWriter? progress = null, Actorvisor.Actors.Cpu.VcpuTotals? totals = null,
        VmRun? run = null)
    {
        run ??= new VmRun(config);
        using var ownSystem = run.System is null ? ActorSystem.Create("actorvisor", AkkaConfig) : null;
        var system = run.System ?? ownSystem!;
        if (config.Input is { } input) StartInputPump(input, run);
        var boots = 0;
        var persistent = run.Persistent; // the CMOS outlives each boot's VM
        // A deterministic schedule and the fault engine outlive each boot's VM too.
        using var scheduler = CreateScheduler(config.Deterministic);
        var faults = CreateFaultEngine(config, scheduler, progress);
        (persistent.Scheduler, persistent.Faults) = (scheduler, faults);

        while (true)
        {
            boots++;
            if (boots > 1) run.Lifecycle.TryMove(VmState.Starting, "building the VM again after a reset", out _);
            var exited = new TaskCompletionSource<VmProtocol.VmExited>(TaskCreationOptions.RunContinuationsAsynchronously);
            var listener = system.ActorOf(Props.Create(() => new ExitListener(exited, config.Name)), $"exit-listener-{config.Name}-{boots}");
            // After a reboot the new supervisor gets a fresh name: the old one's may not be released yet.
            var props = VmSupervisor.Props(config, listener, totals, persistent);
            // Deterministic: the supervisor, too, handles a request to end the run at the instruction that made it.
            if (scheduler is not null) props = props.WithDispatcher(InlineDispatcher.Id);
            var vm = system.ActorOf(props, boots == 1 ? $"vm-{config.Name}" : $"vm-{config.Name}-boot{boots}");
            run.SetCurrent(vm);
            listener.Tell(new ExitListener.WatchVm(vm));
            // A quit typed before this VM was current is not lost: the loop sees it here.
            if (run.QuitReason is { } early) vm.Tell(new VmProtocol.Quit(early));
            var outcome = exited.Task.GetAwaiter().GetResult();
            run.SetCurrent(null);
            if (outcome.Code == VmExitCode.Reset && run.QuitReason is { } reason)
                outcome = new VmProtocol.VmExited(config.Name, VmExitCode.PowerOff, reason);
            if (outcome.Code == VmExitCode.Reset && !config.NoReboot)
            {
                progress?.WriteLine($"actorvisor: {outcome.Message ?? "the guest rebooted"}; resetting the VM");
                if (run.Lifecycle.State != VmState.Resetting) run.Lifecycle.Override(VmState.Resetting, outcome.Message ?? "reset");
                continue;
            }
            // The supervisor moved the lifecycle as it finished; a reset that is not rebuilt, or a supervisor
            // stopped from outside, ends here.
            if (!VmLifecycle.IsFinal(run.Lifecycle.State))
                run.Lifecycle.TryMove(outcome.Code == VmExitCode.Reset ? VmState.PoweredOff : VmLifecycle.StateAfter(outcome.Code),
                    outcome.Message ?? outcome.Code.ToString(), out _);
            ownSystem?.Terminate().Wait(TimeSpan.FromSeconds(10));
            foreach (var r in faults.Report())
                progress?.WriteLine($"actorvisor: fault rule '{r.Rule}': matched {r.Matched}, fired {r.Fired}" +
                                    (r.FirstFired is { } first ? $", first at {first.TotalSeconds:F6} s, last at {r.LastFired!.Value.TotalSeconds:F6} s" : ""));
            if (scheduler is not null)
                progress?.WriteLine($"actorvisor: deterministic run: {scheduler.Clock.Retired} instructions, " +
                                    $"{scheduler.Clock.GetTimestamp() / 1e9:F6} s virtual time, digest {scheduler.Digest.Current()}");
            return outcome;
        }
    }

    /// <summary>
    /// The run's fault engine: always there, so `ctl NAME faults add` works on any run; idle (one flag read per
    /// event) while it has no rule. A random seed is printed when rules come from the start and none was given.
    /// </summary>
    private static Actorvisor.Kernel.Faults.FaultEngine CreateFaultEngine(VmConfig config, DeterministicScheduler? scheduler, TextWriter? progress)
    {
        var rules = config.Faults?.Rules ?? [];
        var seed = config.FaultSeed ?? config.Faults?.Seed;
        if (seed is null)
        {
            seed = BitConverter.ToUInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
            if (rules.Count > 0) progress?.WriteLine($"actorvisor: fault seed {seed} (--fault-seed {seed} repeats this run's decisions)");
        }
        var engine = new Actorvisor.Kernel.Faults.FaultEngine(seed.Value, (TimeProvider?)scheduler?.Clock ?? TimeProvider.System, rules);
        engine.Fired += (point, decision) => Actorvisor.Kernel.Telemetry.FaultTrace.Injected(config.Name, decision.Rule!, point.Device,
            decision.Verdict.ToString().ToLowerInvariant());
        return engine;
    }

    /// <exception cref="FormatException">The replay log is malformed.</exception>
    private static DeterministicScheduler? CreateScheduler(DeterministicRun? run)
    {
        if (run is null) return null;
        var replay = run.ReplayPath is { } r ? HostInputLog.Read(r) : null;
        var record = run.RecordPath is { } w ? new StreamWriter(w, append: false) : null;
        return new DeterministicScheduler(new ScheduleClock(run.Epoch, run.InstructionsPerSecond), run.SliceInstructions, replay, record);
    }

    /// <summary>
    /// Reads the console input on a background thread (a blocking read cannot be interrupted; the thread
    /// dies with the process) and tells the current VM what was typed. Ctrl-A x from a terminal quits.
    /// </summary>
    private static void StartInputPump(ConsoleInput input, VmRun run)
    {
        var thread = new Thread(() =>
        {
            var escape = input.IsTerminal ? new ConsoleEscape() : null;
            var buffer = new byte[256];
            var toGuest = new List<byte>(256);
            try
            {
                int n;
                while ((n = input.Stream.Read(buffer, 0, buffer.Length)) > 0)
                {
                    toGuest.Clear();
                    var quit = false;
                    if (escape is null) toGuest.AddRange(buffer.AsSpan(0, n));
                    else quit = escape.Feed(buffer.AsSpan(0, n), toGuest);
                    var vm = run.Current;
                    if (toGuest.Count > 0) vm?.Tell(new VmProtocol.ConsoleInput(toGuest.ToArray()));
                    if (quit)
                    {
                        const string reason = "quit from the console (Ctrl-A x)";
                        run.Quit(reason);
                    }
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // The input went away: the guest just receives nothing more.
            }
        })
        { IsBackground = true, Name = "console-input" };
        thread.Start();
    }

    /// <summary>
    /// Completes the task with the VM's outcome once the VM actor has terminated (so its name is free and its
    /// resources are gone), or with an error if the VM stops without one.
    /// </summary>
    private sealed class ExitListener : ReceiveActor
    {
        public sealed record WatchVm(IActorRef Vm);

        public ExitListener(TaskCompletionSource<VmProtocol.VmExited> exited, string name)
        {
            VmProtocol.VmExited? outcome = null;
            Receive<WatchVm>(m => Context.Watch(m.Vm));
            // The VM sends VmExited in PostStop, before its death is announced, so a VmExited always comes first.
            Receive<VmProtocol.VmExited>(m => { outcome = m; });
            Receive<Terminated>(_ =>
            {
                exited.TrySetResult(outcome ?? new VmProtocol.VmExited(name, VmExitCode.Error, "the VM supervisor stopped without an exit status"));
                Context.Stop(Self);
            });
        }
    }
}
