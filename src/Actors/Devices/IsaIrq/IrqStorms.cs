using Actorvisor.Kernel.Faults;

namespace Actorvisor.Actors.Devices.IsaIrq;

/// <summary>
/// The fault engine's storm rules made real: whenever the engine's rules change, each GSI a storm rule names
/// is held asserted on the router, and a GSI whose last storm rule went (removed, cleared, paused) is let go.
/// One per VM; disposed with it, since the engine outlives the VM across reboots.
/// </summary>
public sealed class IrqStorms : IDisposable
{
    private readonly FaultEngine _engine;
    private readonly IsaIrqRouter _router;
    private readonly object _lock = new();
    private HashSet<int> _held = new();

    public IrqStorms(FaultEngine engine, IsaIrqRouter router)
    {
        _engine = engine;
        _router = router;
        engine.RulesChanged += Sync;
        Sync();
    }

    private void Sync()
    {
        lock (_lock)
        {
            var now = _engine.StormGsis;
            foreach (var gsi in _held.Except(now)) _router.Hold(gsi, false);
            foreach (var gsi in now.Except(_held)) _router.Hold(gsi, true);
            _held = now.ToHashSet();
        }
    }

    public void Dispose()
    {
        _engine.RulesChanged -= Sync;
        lock (_lock)
        {
            foreach (var gsi in _held) _router.Hold(gsi, false);
            _held.Clear();
        }
    }
}
