using System.Runtime.CompilerServices;
using Iced.Intel;
using Reg = Iced.Intel.Register;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// IMUL's two- and three-operand 32/64-bit forms, chosen per decoded instruction when its block is built:
/// the same product, write and flags as the general <c>Imul</c>, without asking Iced for operand kinds and
/// sizes and without the width switches on every execution.
/// </summary>
internal static unsafe partial class MulDiv
{
    /// <summary>The specialised handler for this instruction, or <paramref name="general"/>.</summary>
    public static delegate*<SoftwareCpu, in Instruction, void> SelectForm(in Instruction i, delegate*<SoftwareCpu, in Instruction, void> general)
    {
        var reg = i.Op1Kind == OpKind.Register;
        return i.Code switch
        {
            Code.Imul_r64_rm64 => reg ? &Imul64<RegSource> : &Imul64<MemSource>,
            Code.Imul_r64_rm64_imm8 or Code.Imul_r64_rm64_imm32 => reg ? &Imul64Imm<RegSource> : &Imul64Imm<MemSource>,
            Code.Imul_r32_rm32 => reg ? &Imul32<RegSource> : &Imul32<MemSource>,
            Code.Imul_r32_rm32_imm8 or Code.Imul_r32_rm32_imm32 => reg ? &Imul32Imm<RegSource> : &Imul32Imm<MemSource>,
            _ => general,
        };
    }

    /// <summary>Where operand 1 (the r/m source) is read from, fixed per instantiation.</summary>
    internal interface ISource
    {
        static abstract ulong Read64(SoftwareCpu cpu, in Instruction i);
        static abstract uint Read32(SoftwareCpu cpu, in Instruction i);
    }

    internal struct RegSource : ISource
    {
        public static ulong Read64(SoftwareCpu cpu, in Instruction i) => cpu.GprRef(i.Op1Register - Reg.RAX);
        public static uint Read32(SoftwareCpu cpu, in Instruction i) => (uint)cpu.GprRef(i.Op1Register - Reg.EAX);
    }

    internal struct MemSource : ISource
    {
        public static ulong Read64(SoftwareCpu cpu, in Instruction i) => cpu.ReadLinear(cpu.MemoryLinear(in i, 8, AccessKind.Read), 8);
        public static uint Read32(SoftwareCpu cpu, in Instruction i) => (uint)cpu.ReadLinear(cpu.MemoryLinear(in i, 4, AccessKind.Read), 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Product64(SoftwareCpu cpu, ref ulong dest, long a, long b)
    {
        var hi = Math.BigMul(a, b, out var lo);
        dest = (ulong)lo;
        SetMulFlags(cpu, hi != (lo >> 63));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Product32(SoftwareCpu cpu, ref ulong dest, int a, int b)
    {
        var p = (long)a * b;
        dest = (uint)p;
        SetMulFlags(cpu, (int)p != p);
    }

    private static void Imul64<T>(SoftwareCpu cpu, in Instruction i) where T : struct, ISource
    {
        var b = (long)T.Read64(cpu, in i);
        ref var d = ref cpu.GprRef(i.Op0Register - Reg.RAX);
        Product64(cpu, ref d, (long)d, b);
    }

    private static void Imul64Imm<T>(SoftwareCpu cpu, in Instruction i) where T : struct, ISource
    {
        var a = (long)T.Read64(cpu, in i);
        var b = i.Op2Kind == OpKind.Immediate8to64 ? i.Immediate8to64 : i.Immediate32to64;
        Product64(cpu, ref cpu.GprRef(i.Op0Register - Reg.RAX), a, b);
    }

    private static void Imul32<T>(SoftwareCpu cpu, in Instruction i) where T : struct, ISource
    {
        var b = (int)T.Read32(cpu, in i);
        ref var d = ref cpu.GprRef(i.Op0Register - Reg.EAX);
        Product32(cpu, ref d, (int)d, b);
    }

    private static void Imul32Imm<T>(SoftwareCpu cpu, in Instruction i) where T : struct, ISource
    {
        var a = (int)T.Read32(cpu, in i);
        var b = i.Op2Kind == OpKind.Immediate8to32 ? i.Immediate8to32 : (int)i.Immediate32;
        Product32(cpu, ref cpu.GprRef(i.Op0Register - Reg.EAX), a, b);
    }
}
