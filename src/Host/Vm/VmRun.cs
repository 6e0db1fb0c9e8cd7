using Akka.Actor;

namespace Actorvisor.Host.Vm;

/// <summary>
/// One VM's run as the host sees it, across the supervisor instances its resets build: the lifecycle and
/// the battery-backed state, the supervisor that is current (null while a reset rebuilds it), and the
/// user's quit. The control socket and the signal handler reach the VM through it.
/// </summary>
public sealed class VmRun
{
    private IActorRef? _current;
    private string? _quitReason;

    /// <param name="system">The process's ActorSystem when several VMs share it; null: <see cref="VmRunner"/> makes its own.</param>
    public VmRun(VmConfig config, ActorSystem? system = null)
    {
        Config = config;
        System = system;
    }

    public VmConfig Config { get; }
    public string Name => Config.Name;
    public ActorSystem? System { get; }
    public VmPersistentState Persistent { get; } = new();
    public VmLifecycle Lifecycle => Persistent.Lifecycle;
    public DateTime StartedUtc { get; } = DateTime.UtcNow;

    /// <summary>The VM supervisor now running, or null between two boots and after the end.</summary>
    public IActorRef? Current => Volatile.Read(ref _current);

    internal void SetCurrent(IActorRef? vm) => Volatile.Write(ref _current, vm);

    /// <summary>The user's quit (Ctrl-A x, a second SIGTERM), kept for the run: it may come while one supervisor is ending and the next is not built yet.</summary>
    public string? QuitReason => Volatile.Read(ref _quitReason);

    /// <summary>Ends the run as a power-off, whatever the guest does.</summary>
    public void Quit(string reason)
    {
        Volatile.Write(ref _quitReason, reason);
        Current?.Tell(new VmProtocol.Quit(reason));
    }
}
