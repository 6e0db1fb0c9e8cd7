using Actorvisor.Actors.Devices;

namespace Actorvisor.Actors.Tests.Devices;

/// <summary>An interrupt line that remembers what the model did with it.</summary>
public sealed class RecordingIrqLine : IEdgeIrqLine
{
    public bool Level { get; private set; }
    public int Pulses { get; private set; }
    public int Rises { get; private set; }
    public List<string> Events { get; } = new();

    public void Set(bool level)
    {
        if (level && !Level) Rises++;
        Level = level;
        Events.Add(level ? "high" : "low");
    }

    public void Pulse()
    {
        Pulses++;
        Events.Add("pulse");
    }
}
