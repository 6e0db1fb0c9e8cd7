namespace Actorvisor.Kernel.Faults;

/// <summary>
/// The fault engine's random numbers: SplitMix64 (Steele, Lea and Flood, 2014), a small generator whose whole
/// state is one 64-bit word, so a seed fixes every later draw on every platform and .NET version
/// (System.Random's algorithm is not promised to stay the same).
/// </summary>
public sealed class SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A double in [0, 1) from the top 53 bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>An integer in [0, <paramref name="bound"/>).</summary>
    public int NextInt(int bound) => (int)(Next() % (ulong)bound);
}
