namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// Event delivery through the IVT (real mode) and the IDT (protected and long mode), SDM Vol. 3A ch. 6.
/// </summary>
public sealed partial class SoftwareCpu
{
    /// <summary>Delivers an exception, interrupt or NMI. Throws <see cref="TripleFaultException"/> on shutdown.</summary>
    internal void DeliverEvent(int vector, EventKind kind, uint? errorCode, ulong address = 0)
    {
        if (vector == Vectors.PF) Cr2 = address;
        if (!ProtectedMode)
        {
            DeliverReal(vector);
            return;
        }
        throw new TripleFaultException($"protected-mode event delivery is not built yet ({CpuFault.Name(vector)})");
    }

    private void DeliverReal(int vector)
    {
        if ((ulong)vector * 4 + 3 > Idtr.Limit) throw new TripleFaultException($"vector {vector} beyond the IVT limit");
        var entry = ReadLinear(Idtr.Base + (ulong)vector * 4, 4);
        Push(GetFlags() & 0xFFFF, 2);
        Push(Segs[Seg.CS].Selector, 2);
        Push(Rip & 0xFFFF, 2);
        FlagsRest &= ~(RFlags.IF | RFlags.TF | RFlags.AC | RFlags.RF);
        var sel = (ushort)(entry >> 16);
        var cs = Segs[Seg.CS];
        cs.Selector = sel;
        cs.Base = (ulong)sel << 4;
        Segs[Seg.CS] = cs;
        Rip = entry & 0xFFFF;
        UpdateMode();
    }
}
