namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// An architectural exception raised while executing an instruction. The run loop catches it, rolls RIP
/// back to the faulting instruction and delivers the vector through the IVT/IDT.
/// </summary>
public sealed class CpuFault : Exception
{
    public int Vector { get; }
    public uint? ErrorCode { get; }
    /// <summary>The faulting linear address for #PF (CR2).</summary>
    public ulong Address { get; }

    private CpuFault(int vector, uint? errorCode, ulong address)
        : base(null) { Vector = vector; ErrorCode = errorCode; Address = address; }

    public override string Message => Vector switch
    {
        Vectors.PF => $"#PF(0x{ErrorCode:x}) at 0x{Address:x}",
        _ => ErrorCode is { } e ? $"{Name(Vector)}(0x{e:x})" : Name(Vector),
    };

    public static string Name(int vector) => vector switch
    {
        0 => "#DE", 1 => "#DB", 2 => "NMI", 3 => "#BP", 4 => "#OF", 5 => "#BR", 6 => "#UD", 7 => "#NM", 8 => "#DF",
        10 => "#TS", 11 => "#NP", 12 => "#SS", 13 => "#GP", 14 => "#PF", 16 => "#MF", 17 => "#AC", 18 => "#MC", 19 => "#XM",
        _ => $"vector {vector}",
    };

    public static CpuFault DivideError() => new(Vectors.DE, null, 0);
    public static CpuFault InvalidOpcode() => new(Vectors.UD, null, 0);
    public static CpuFault DeviceNotAvailable() => new(Vectors.NM, null, 0);
    public static CpuFault General(uint errorCode = 0) => new(Vectors.GP, errorCode, 0);
    public static CpuFault StackFault(uint errorCode = 0) => new(Vectors.SS, errorCode, 0);
    public static CpuFault NotPresent(uint errorCode) => new(Vectors.NP, errorCode, 0);
    public static CpuFault InvalidTss(uint errorCode) => new(Vectors.TS, errorCode, 0);
    public static CpuFault PageFault(uint errorCode, ulong address) => new(Vectors.PF, errorCode, address);
    public static CpuFault Of(int vector, uint? errorCode = null) => new(vector, errorCode, 0);
}

/// <summary>Thrown for a triple fault: the CPU shuts down (bhyve exits 3).</summary>
public sealed class TripleFaultException(string message) : Exception(message);
