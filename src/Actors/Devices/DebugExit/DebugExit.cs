namespace Actorvisor.Actors.Devices.DebugExit;

/// <summary>
/// QEMU's isa-debug-exit: a write of value V to its port range ends the run with process status
/// (V &lt;&lt; 1) | 1, so a test kernel's result cannot be confused with a normal exit (0). Reads return all ones.
/// </summary>
public sealed class DebugExit(ushort ioBase = DebugExit.DefaultIoBase, ushort ioSize = DebugExit.DefaultIoSize)
{
    public const ushort DefaultIoBase = 0xF4;
    public const ushort DefaultIoSize = 4;

    public ushort IoBase { get; } = ioBase;
    public ushort IoSize { get; } = ioSize is 1 or 2 or 4 ? ioSize : throw new ArgumentException("isa-debug-exit iosize must be 1, 2 or 4");

    /// <summary>The status the process exits with after a write of <paramref name="value"/>.</summary>
    public static int ExitStatus(uint value) => (int)((value << 1) | 1);

    /// <summary>A guest write: returns the exit status the VM must end with.</summary>
    public int Write(int size, uint value) => ExitStatus(size switch { 1 => value & 0xFF, 2 => value & 0xFFFF, _ => value });

    public uint Read(int size) => size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
}
