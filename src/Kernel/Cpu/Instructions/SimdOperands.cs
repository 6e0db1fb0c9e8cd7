using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Operand access shared by the MMX and SSE families. Every value is a <see cref="Vector128{T}"/> of bytes:
/// an MMX register or a 64-bit (or smaller) memory operand arrives zero-extended, and a write to a narrower
/// destination stores only its low part. Legacy-SSE 16-byte memory operands must be 16-byte aligned
/// (#GP(0)) except for the explicitly unaligned moves.
/// </summary>
internal static unsafe class Simd
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsXmm(Register r) => r >= Register.XMM0 && r <= Register.XMM15;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsMm(Register r) => r >= Register.MM0 && r <= Register.MM7;

    /// <summary>The availability checks for the instruction's register file(s): SSE for XMM, MMX (and MMX mode) for MM.</summary>
    public static void Enter(SoftwareCpu cpu, in Instruction i)
    {
        bool xmm = false, mm = false;
        for (var n = 0; n < i.OpCount; n++)
        {
            if (i.GetOpKind(n) != OpKind.Register) continue;
            var r = i.GetOpRegister(n);
            xmm |= IsXmm(r);
            mm |= IsMm(r);
        }
        if (xmm || !mm) cpu.CheckSseAvailable();
        if (mm) cpu.EnterMmx();
    }

    /// <summary>True when operand 0 is an MMX register (the 64-bit form of an instruction).</summary>
    public static bool Mmx(in Instruction i) => i.Op0Kind == OpKind.Register && IsMm(i.Op0Register);

    private static bool MayBeUnaligned(Mnemonic m) =>
        m is Mnemonic.Movups or Mnemonic.Movupd or Mnemonic.Movdqu or Mnemonic.Maskmovdqu;

    public static ulong Linear(SoftwareCpu cpu, in Instruction i, int size, AccessKind kind)
    {
        var la = cpu.MemoryLinear(in i, size, kind);
        if (size == 16 && (la & 15) != 0 && !MayBeUnaligned(i.Mnemonic)) throw CpuFault.General(0);
        return la;
    }

    public static Vector128<byte> Read(SoftwareCpu cpu, in Instruction i, int op)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
                var r = i.GetOpRegister(op);
                if (IsXmm(r)) return cpu.ReadXmm(r - Register.XMM0);
                if (IsMm(r)) return Vector128.Create(cpu.ReadMm(r - Register.MM0), 0UL).AsByte();
                return Vector128.Create(cpu.ReadGpr(r), 0UL).AsByte();
            case OpKind.Memory:
                var size = i.MemorySize.GetSize();
                var la = Linear(cpu, in i, size, AccessKind.Read);
                return size == 16 ? cpu.ReadLinear128(la) : Vector128.Create(cpu.ReadLinear(la, size), 0UL).AsByte();
            default:
                throw new InvalidOperationException($"operand {op} of {i.Code} is not a SIMD value");
        }
    }

    public static void Write(SoftwareCpu cpu, in Instruction i, int op, Vector128<byte> v)
    {
        if (i.GetOpKind(op) == OpKind.Register)
        {
            var r = i.GetOpRegister(op);
            if (IsXmm(r)) cpu.WriteXmm(r - Register.XMM0, v);
            else if (IsMm(r)) cpu.WriteMm(r - Register.MM0, v.AsUInt64().GetElement(0));
            else cpu.WriteGpr(r, v.AsUInt64().GetElement(0));
            return;
        }
        var size = i.MemorySize.GetSize();
        var la = Linear(cpu, in i, size, AccessKind.Write);
        if (size == 16) cpu.WriteLinear128(la, v);
        else cpu.WriteLinear(la, size, v.AsUInt64().GetElement(0));
    }

    public static Vector128<byte> Low64(Vector128<byte> v) => Vector128.Create(v.AsUInt64().GetElement(0), 0UL).AsByte();

    /// <summary>dst = f(dst, src) for "op dst, src".</summary>
    public static void Binary(SoftwareCpu cpu, in Instruction i, Func<Vector128<byte>, Vector128<byte>, Vector128<byte>> f)
    {
        Enter(cpu, in i);
        var b = Read(cpu, in i, 1);
        var a = Read(cpu, in i, 0);
        Write(cpu, in i, 0, f(a, b));
    }

    /// <summary>Registers the MMX/SSE/SSE2 legacy encodings of a mnemonic only: later extensions (SSE4.1's PEXTRW m16) stay #UD, as CPUID says.</summary>
    public static void Set(Dispatch.HandlerTable t, Mnemonic m, delegate*<SoftwareCpu, in Instruction, void> h)
    {
        foreach (var c in Codes(m)) t.Set(c, h);
    }

    private static readonly Dictionary<Mnemonic, List<Code>> Baseline = BuildBaseline();

    private static List<Code> Codes(Mnemonic m) =>
        Baseline.TryGetValue(m, out var l) ? l : throw new ArgumentException($"no MMX/SSE/SSE2 encodings for {m}");

    private static Dictionary<Mnemonic, List<Code>> BuildBaseline()
    {
        var d = new Dictionary<Mnemonic, List<Code>>();
        foreach (var c in Enum.GetValues<Code>())
        {
            if (c == Code.INVALID || c.ToOpCode().Encoding != EncodingKind.Legacy) continue;
            var ok = true;
            foreach (var f in c.CpuidFeatures())
                ok &= f is CpuidFeature.MMX or CpuidFeature.SSE or CpuidFeature.SSE2;
            if (!ok) continue;
            if (!d.TryGetValue(c.Mnemonic(), out var l)) d[c.Mnemonic()] = l = new List<Code>();
            l.Add(c);
        }
        return d;
    }
}
