using Akka.Actor;
using Akka.Configuration;

namespace Actorvisor.Host.Vm;

/// <summary>
/// Runs one VM to its end in a fresh ActorSystem: creates /user/vm-&lt;name&gt;, waits for its
/// <see cref="VmProtocol.VmExited"/>, shuts the system down and returns the outcome.
/// </summary>
public static class VmRunner
{
    /// <summary>
    /// stdout carries the guest's console, so Akka's own logging goes to stderr, warnings and up only.
    /// </summary>
    private static readonly Config AkkaConfig = ConfigurationFactory.ParseString("""
        akka {
          loglevel = WARNING
          stdout-loglevel = OFF
          loggers = ["Actorvisor.Host.StderrLogger, actorvisor"]
          log-dead-letters = off
          log-dead-letters-during-shutdown = off
          coordinated-shutdown.run-by-clr-shutdown-hook = off
        }
        """);

    public static VmProtocol.VmExited Run(VmConfig config)
    {
        using var system = ActorSystem.Create("actorvisor", AkkaConfig);
        var exited = new TaskCompletionSource<VmProtocol.VmExited>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = system.ActorOf(Props.Create(() => new ExitListener(exited, config.Name)), "exit-listener");
        var vm = system.ActorOf(VmSupervisor.Props(config, listener), $"vm-{config.Name}");
        listener.Tell(new ExitListener.WatchVm(vm));
        var outcome = exited.Task.GetAwaiter().GetResult();
        system.Terminate().Wait(TimeSpan.FromSeconds(10));
        return outcome;
    }

    /// <summary>Completes the task with the VM's outcome, or with an error if the VM stops without one.</summary>
    private sealed class ExitListener : ReceiveActor
    {
        public sealed record WatchVm(IActorRef Vm);

        public ExitListener(TaskCompletionSource<VmProtocol.VmExited> exited, string name)
        {
            Receive<WatchVm>(m => Context.Watch(m.Vm));
            // Block bodies: a Func<T, bool> handler returning false would count as unhandled.
            Receive<VmProtocol.VmExited>(m => { exited.TrySetResult(m); });
            // The VM sends VmExited in PostStop, before its death is announced, so a VmExited always wins.
            Receive<Terminated>(_ => { exited.TrySetResult(new VmProtocol.VmExited(name, VmExitCode.Error, "the VM supervisor stopped without an exit status")); });
        }
    }
}
