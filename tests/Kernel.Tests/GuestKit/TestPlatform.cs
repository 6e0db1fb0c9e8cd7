using System.Text;
using Actorvisor.Kernel.Cpu;

namespace Actorvisor.Kernel.Tests.GuestKit;

/// <summary>
/// A platform for guest-program tests: port 0x3F8 is a console (bytes written are collected), port 0xF4
/// stops the run with the written value (as QEMU's isa-debug-exit), other ports read as all ones and are
/// recorded. MMIO reads all ones.
/// </summary>
public sealed class TestPlatform : ICpuPlatform
{
    public const ushort ConsolePort = 0x3F8;
    public const ushort ExitPort = 0xF4;

    public readonly StringBuilder Console = new();
    public readonly List<(ushort Port, int Size, uint Value)> PortWrites = new();
    public readonly List<(ulong Address, int Size, ulong Value)> MmioWrites = new();
    public uint? ExitValue { get; private set; }
    public SoftwareCpu? Cpu { get; set; }
    /// <summary>Values returned by port reads, by port; unset ports read all ones.</summary>
    public readonly Dictionary<ushort, uint> PortValues = new();

    public uint PortRead(int vcpuId, ushort port, int size)
    {
        if (port == ConsolePort + 5) return 0x60; // LSR: transmitter empty
        return PortValues.TryGetValue(port, out var v) ? v : size == 1 ? 0xFFu : size == 2 ? 0xFFFFu : 0xFFFF_FFFFu;
    }

    public void PortWrite(int vcpuId, ushort port, int size, uint value)
    {
        PortWrites.Add((port, size, value));
        if (port == ConsolePort) Console.Append((char)(byte)value);
        if (port == ExitPort)
        {
            ExitValue = value;
            Cpu?.Kick();
        }
    }

    public ulong MmioRead(int vcpuId, ulong address, int size) => size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    public void MmioWrite(int vcpuId, ulong address, int size, ulong value) => MmioWrites.Add((address, size, value));
}
