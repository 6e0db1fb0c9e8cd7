using Akka.Actor;
using Akka.Event;

namespace Actorvisor.Host;

/// <summary>Akka's log sink for the program: stderr, since stdout is the guest's console.</summary>
public sealed class StderrLogger : ReceiveActor
{
    public StderrLogger()
    {
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(e => Console.Error.WriteLine($"actorvisor: [{e.LogLevel()}] {e.LogSource}: {e.Message}{(e.Cause is { } c ? $" ({c.GetType().Name}: {c.Message})" : "")}"));
    }
}
