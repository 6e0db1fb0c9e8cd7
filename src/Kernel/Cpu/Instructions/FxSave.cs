using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>FXSAVE/FXRSTOR (and the REX.W forms), LDMXCSR/STMXCSR.</summary>
internal static unsafe class FxSave
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Fxsave, &Save);
        t.Set(Mnemonic.Fxsave64, &Save);
        t.Set(Mnemonic.Fxrstor, &Restore);
        t.Set(Mnemonic.Fxrstor64, &Restore);
        t.Set(Mnemonic.Ldmxcsr, &Ldmxcsr);
        t.Set(Mnemonic.Stmxcsr, &Stmxcsr);
    }

    /// <summary>#NM when CR0.EM or CR0.TS; #GP(0) unless the area is 16-byte aligned.</summary>
    private static ulong Area(SoftwareCpu cpu, in Instruction i, AccessKind kind)
    {
        cpu.CheckX87Available();
        var la = cpu.MemoryLinear(in i, 512, kind);
        if ((la & 15) != 0) throw CpuFault.General(0);
        return la;
    }

    /// <summary>Bytes the processor defines in the image: up to XMM15 in 64-bit mode, XMM7 otherwise.</summary>
    private static int DefinedBytes(SoftwareCpu cpu) => cpu.Is64 ? 416 : 288;

    private static void Save(SoftwareCpu cpu, in Instruction i)
    {
        var la = Area(cpu, in i, AccessKind.Write);
        Span<byte> img = stackalloc byte[512];
        cpu.FxSaveImage(img, i.Mnemonic == Mnemonic.Fxsave64, cpu.Is64);
        var n = DefinedBytes(cpu);
        cpu.ProbeWrite(la, n);
        for (var o = 0; o < n; o += 8)
            cpu.WriteLinear(la + (ulong)o, 8, BitConverter.ToUInt64(img.Slice(o, 8)));
    }

    private static void Restore(SoftwareCpu cpu, in Instruction i)
    {
        var la = Area(cpu, in i, AccessKind.Read);
        Span<byte> img = stackalloc byte[512];
        var n = DefinedBytes(cpu);
        for (var o = 0; o < n; o += 8)
            BitConverter.TryWriteBytes(img.Slice(o, 8), cpu.ReadLinear(la + (ulong)o, 8));
        cpu.FxRestoreImage(img, i.Mnemonic == Mnemonic.Fxrstor64, cpu.Is64);
    }

    private static void Ldmxcsr(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckSseAvailable();
        var v = (uint)cpu.ReadOperand(in i, 0);
        if ((v & ~MxcsrBits.Mask) != 0) throw CpuFault.General(0);
        cpu.Mxcsr = v;
    }

    private static void Stmxcsr(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckSseAvailable();
        cpu.WriteOperand(in i, 0, cpu.Mxcsr);
    }
}
