using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Actorvisor.Actors.Cpu.Deterministic;

/// <summary>
/// A running SHA-256 over what the vCPUs exchanged with the devices (every port and MMIO access with its
/// value) and where each scheduling slice ended (vCPU, instruction count, RIP). Two deterministic runs with
/// the same guest, inputs and faults print the same digest; the first difference changes it.
/// Single-threaded: the scheduler's thread feeds it.
/// </summary>
public sealed class RunDigest : IDisposable
{
    public enum Kind : byte { PortRead = 1, PortWrite, MmioRead, MmioWrite, SliceEnd, Input }

    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _record = new byte[1 + 4 + 8 + 4 + 8];

    public long Records { get; private set; }

    public void Add(Kind kind, int vcpu, ulong a, int size, ulong b)
    {
        _record[0] = (byte)kind;
        BinaryPrimitives.WriteInt32LittleEndian(_record.AsSpan(1), vcpu);
        BinaryPrimitives.WriteUInt64LittleEndian(_record.AsSpan(5), a);
        BinaryPrimitives.WriteInt32LittleEndian(_record.AsSpan(13), size);
        BinaryPrimitives.WriteUInt64LittleEndian(_record.AsSpan(17), b);
        _hash.AppendData(_record);
        Records++;
    }

    public void AddBytes(ReadOnlySpan<byte> data) => _hash.AppendData(data);

    /// <summary>The digest so far, in hex (the hash goes on).</summary>
    public string Current()
    {
        Span<byte> h = stackalloc byte[32];
        _hash.GetCurrentHash(h);
        return Convert.ToHexStringLower(h);
    }

    public void Dispose() => _hash.Dispose();
}
