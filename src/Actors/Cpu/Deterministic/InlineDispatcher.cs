using Akka.Configuration;
using Akka.Dispatch;

namespace Actorvisor.Actors.Cpu.Deterministic;

/// <summary>
/// The dispatcher of the deterministic schedule: a message is processed on the thread that sends it, before
/// <c>Tell</c> returns. A vCPU's port write therefore reaches the device, the device's interrupt reaches the
/// IOAPIC and the LAPIC, and all of it is done before the vCPU executes its next instruction, every run
/// alike; a timer callback on the scheduler thread likewise. Akka's mailbox still runs one message of an
/// actor at a time: a message sent to an actor already running on this or another thread is queued and
/// processed by that run.
/// </summary>
public sealed class InlineDispatcher(MessageDispatcherConfigurator configurator) : MessageDispatcher(configurator)
{
    /// <summary>The id under which <see cref="Config"/> registers it (<c>Props.WithDispatcher</c>).</summary>
    public const string Id = "actorvisor-inline-dispatcher";

    /// <summary>HOCON to merge into an ActorSystem's configuration.</summary>
    public static readonly Config Config = ConfigurationFactory.ParseString(
        $"{Id} {{ type = \"{typeof(InlineDispatcherConfigurator).AssemblyQualifiedName}\" }}");

    protected override void ExecuteTask(IRunnable run) => run.Run();

    protected override void Shutdown() { }
}

/// <summary>Creates the one <see cref="InlineDispatcher"/> of an ActorSystem (Akka instantiates it by name from the config).</summary>
public sealed class InlineDispatcherConfigurator : MessageDispatcherConfigurator
{
    private readonly InlineDispatcher _dispatcher;

    public InlineDispatcherConfigurator(Config config, IDispatcherPrerequisites prerequisites) : base(config, prerequisites) =>
        _dispatcher = new InlineDispatcher(this);

    public override MessageDispatcher Dispatcher() => _dispatcher;
}
