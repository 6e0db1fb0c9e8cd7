namespace Actorvisor.Kernel.Cpu;

/// <summary>Pushes and pops on SS:RSP with the stack-address size of the current mode.</summary>
public sealed partial class SoftwareCpu
{
    /// <summary>Pushes <paramref name="size"/> bytes; RSP changes only once the write succeeded.</summary>
    public void Push(ulong value, int size)
    {
        var ss = StackAddressSize;
        var rsp = Gprs[Gpr.RSP];
        var newSp = rsp - (ulong)size;
        if (ss == 4) newSp = (uint)newSp;
        else if (ss == 2) newSp = (ushort)newSp;
        WriteMem(Seg.SS, newSp, size, value);
        SetStackPointer(newSp);
    }

    /// <summary>Pops <paramref name="size"/> bytes; RSP changes only once the read succeeded.</summary>
    public ulong Pop(int size)
    {
        var v = PeekStack(0, size);
        SetStackPointer(Gprs[Gpr.RSP] + (ulong)size);
        return v;
    }

    /// <summary>Reads from the stack at RSP + offset without moving it.</summary>
    public ulong PeekStack(ulong offset, int size)
    {
        var ss = StackAddressSize;
        var sp = Gprs[Gpr.RSP] + offset;
        if (ss == 4) sp = (uint)sp;
        else if (ss == 2) sp = (ushort)sp;
        return ReadMem(Seg.SS, sp, size);
    }

    /// <summary>Writes RSP with the stack-address size (SP alone in 16-bit stacks).</summary>
    public void SetStackPointer(ulong value)
    {
        switch (StackAddressSize)
        {
            case 8: Gprs[Gpr.RSP] = value; break;
            case 4: Gprs[Gpr.RSP] = (uint)value; break;
            default: Gprs[Gpr.RSP] = (Gprs[Gpr.RSP] & ~0xFFFFUL) | (ushort)value; break;
        }
    }
}
