namespace Actorvisor.Kernel.Telemetry;

/// <summary>
/// One event class's on/off answer, cached until the switches change: what a device line or a bus entry keeps
/// so a traced path asks the pattern list once per change, not once per event.
/// </summary>
public sealed class EventClass(string name)
{
    private int _version = -1;
    private bool _on;

    public string Name { get; } = name;

    public bool Enabled
    {
        get
        {
            var v = TraceSwitches.Version;
            if (v != _version)
            {
                _on = TraceSwitches.IsEnabled(Name);
                _version = v;
            }
            return _on;
        }
    }

    /// <summary>On and sampled in: start a trace now.</summary>
    public bool ShouldTrace => Enabled && TraceSwitches.Sample();
}
