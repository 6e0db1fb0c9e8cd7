using System.Runtime.InteropServices;
using Akka.Actor;
using Actorvisor.Actors.Cpu;
using Actorvisor.Host.Control;
using Actorvisor.Host.Vm;

namespace Actorvisor.Host;

/// <summary>
/// Runs one or more VMs in this process: one ActorSystem, one <see cref="VmSupervisor"/> (through
/// <see cref="VmRunner"/>) and one control socket per VM, each VM on its own thread, so one VM's end or
/// failure does not touch the others. SIGTERM presses every VM's ACPI power button (a guest that listens
/// shuts down); a second SIGTERM powers them off at once.
/// </summary>
public static class VmHost
{
    /// <param name="runDir">Where the control sockets go (<see cref="ControlPaths.Directory"/>).</param>
    /// <param name="started">Called with the runs once their sockets are open (tests wait on it).</param>
    /// <param name="defaultNamed">The VMs are named by default, not by the user: a name a running VM holds becomes
    /// NAME-2, NAME-3, ... (so two plain `actorvisor run` can run side by side); a name the user chose that is
    /// taken is an error.</param>
    public static IReadOnlyList<VmProtocol.VmExited> RunAll(IReadOnlyList<VmConfig> configs, TextWriter stderr,
        VcpuTotals? totals = null, string? runDir = null, Action<IReadOnlyList<VmRun>>? started = null, bool defaultNamed = false)
    {
        using var system = ActorSystem.Create("actorvisor", VmRunner.AkkaConfig);
        var directory = ControlPaths.Directory(runDir);
        // Escalated device failures write their state dumps next to the control sockets unless told otherwise.
        var runs = configs.Select(c => new VmRun((defaultNamed ? FreeName(c, directory) : c) with { DumpDirectory = c.DumpDirectory ?? directory }, system))
            .ToArray();
        var servers = new ControlServer?[runs.Length];
        var outcomes = new VmProtocol.VmExited[runs.Length];
        try
        {
            for (var i = 0; i < runs.Length; i++)
            {
                var tried = new HashSet<string>();
                try
                {
                    while (true)
                    {
                        try
                        {
                            servers[i] = ControlServer.Start(runs[i], directory);
                            break;
                        }
                        catch (ControlSocketException) when (defaultNamed && tried.Add(runs[i].Name) && tried.Count < 100)
                        {
                            // Another run took the free name between the look and the bind: take the next one.
                            var baseName = configs[i].Name;
                            var next = Enumerable.Range(2, 1000).Select(n => $"{baseName}-{n}").First(n => !tried.Contains(n));
                            runs[i] = new VmRun(FreeName(runs[i].Config with { Name = next }, directory, baseName, tried), system);
                        }
                    }
                }
                catch (ControlSocketException e)
                {
                    // This VM cannot be controlled or listed, and may clash with a running one: it does not start.
                    outcomes[i] = new VmProtocol.VmExited(runs[i].Name, VmExitCode.Error, e.Message);
                    runs[i].Lifecycle.TryMove(VmState.Failed, e.Message, out _);
                }
            }
            using var term = new TerminationSignal(runs, stderr);
            started?.Invoke(runs);
            var tasks = runs.Select((run, i) => outcomes[i] is not null ? Task.CompletedTask : Task.Factory.StartNew(() =>
            {
                try
                {
                    outcomes[i] = VmRunner.Run(run.Config, stderr, totals, run);
                }
                catch (Exception e)
                {
                    outcomes[i] = new VmProtocol.VmExited(run.Name, VmExitCode.Error, $"{e.GetType().Name}: {e.Message}");
                    run.Lifecycle.TryMove(VmState.Failed, e.Message, out _);
                }
            }, TaskCreationOptions.LongRunning)).ToArray();
            Task.WaitAll(tasks);
            return outcomes;
        }
        finally
        {
            foreach (var s in servers) s?.Dispose();
            system.Terminate().Wait(TimeSpan.FromSeconds(10));
        }
    }

    private static VmConfig FreeName(VmConfig config, string directory, string? baseName = null, IReadOnlySet<string>? skip = null)
    {
        baseName ??= config.Name;
        for (var n = 1; n < 1000; n++)
        {
            var name = n == 1 ? baseName : $"{baseName}-{n}";
            if (skip?.Contains(name) == true) continue;
            if (!ControlClient.Answers(ControlPaths.Socket(directory, name))) return config with { Name = name };
        }
        return config;
    }

    /// <summary>
    /// The process's exit status for several VMs: the highest of theirs, so any failure (4) or triple fault (3)
    /// shows, and a single VM's status is its own.
    /// </summary>
    public static int ExitStatus(IReadOnlyList<VmProtocol.VmExited> outcomes) => outcomes.Max(o => o.ExitStatus);
}

/// <summary>
/// SIGTERM while VMs run: the first presses each VM's ACPI power button, a second forces power-off. The
/// registration cancels the runtime's default (ending the process at once), so sockets are removed and
/// consoles drained on the way out.
/// </summary>
public sealed class TerminationSignal : IDisposable
{
    private readonly IReadOnlyList<VmRun> _runs;
    private readonly TextWriter _stderr;
    private readonly PosixSignalRegistration? _registration;
    private int _count;

    public TerminationSignal(IReadOnlyList<VmRun> runs, TextWriter stderr, bool register = true)
    {
        _runs = runs;
        _stderr = stderr;
        if (register && !OperatingSystem.IsWindows())
            _registration = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
            {
                ctx.Cancel = true;
                Received();
            });
    }

    /// <summary>One SIGTERM (called by the signal handler; tests call it directly).</summary>
    public void Received()
    {
        if (Interlocked.Increment(ref _count) == 1)
        {
            _stderr.WriteLine("actorvisor: SIGTERM: pressing the ACPI power button; a second SIGTERM forces power-off");
            foreach (var r in _runs) r.Current?.Tell(VmControl.PowerButton.Instance);
        }
        else
        {
            foreach (var r in _runs) r.Quit("a second SIGTERM: forced power-off");
        }
    }

    public void Dispose() => _registration?.Dispose();
}
