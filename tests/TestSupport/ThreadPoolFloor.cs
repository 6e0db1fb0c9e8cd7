using System.Runtime.CompilerServices;

namespace Actorvisor.TestSupport;

/// <summary>
/// Raises the thread pool's floor when a test assembly loads. Test threads block (TestKit's ExpectMsg, a
/// fixture waiting for a Linux boot) and the actor systems run on the pool; on a two-core machine the pool
/// starts with two threads and adds about one a second, so a busy run once left an actor's Start unanswered
/// for more than ten seconds (CI, VcpuActorTests). A floor of 32 makes such stalls impossible to come from
/// the pool.
/// </summary>
internal static class ThreadPoolFloor
{
    [ModuleInitializer]
    internal static void Raise()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }
}
