using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// MOVZX, MOVSX and MOVSXD into a 32- or 64-bit register, chosen per decoded instruction when its block is
/// built (register or memory source): what the general <c>DataMove.Movzx/Movsx</c> do for these forms,
/// without asking Iced for operand kinds and sizes on every execution. A 32-bit destination is
/// zero-extended as every 32-bit register write is.
/// </summary>
internal static unsafe class ExtendForms
{
    /// <summary>The specialised handler for this instruction, or <paramref name="general"/>.</summary>
    public static delegate*<SoftwareCpu, in Instruction, void> Select(in Instruction i, delegate*<SoftwareCpu, in Instruction, void> general)
    {
        var reg = i.Op1Kind == OpKind.Register;
        return i.Code switch
        {
            Code.Movzx_r32_rm8 => reg ? &Zx32From8R : &Zx32From8M,
            Code.Movzx_r32_rm16 => reg ? &Zx32From16R : &Zx32From16M,
            Code.Movzx_r64_rm8 => reg ? &Zx64From8R : &Zx64From8M,
            Code.Movzx_r64_rm16 => reg ? &Zx64From16R : &Zx64From16M,
            Code.Movsx_r32_rm8 => reg ? &Sx32From8R : &Sx32From8M,
            Code.Movsx_r32_rm16 => reg ? &Sx32From16R : &Sx32From16M,
            Code.Movsx_r64_rm8 => reg ? &Sx64From8R : &Sx64From8M,
            Code.Movsx_r64_rm16 => reg ? &Sx64From16R : &Sx64From16M,
            Code.Movsxd_r64_rm32 => reg ? &Sx64From32R : &Sx64From32M,
            _ => general,
        };
    }

    // Sources. An 8-bit register may be AH..BH, so it goes through ReadGpr.
    private static byte Reg8(SoftwareCpu cpu, in Instruction i) => (byte)cpu.ReadGpr(i.Op1Register);
    private static ushort Reg16(SoftwareCpu cpu, in Instruction i) => (ushort)cpu.GprRef(i.Op1Register - Register.AX);
    private static uint Reg32(SoftwareCpu cpu, in Instruction i) => (uint)cpu.GprRef(i.Op1Register - Register.EAX);
    private static byte Mem8(SoftwareCpu cpu, in Instruction i) => (byte)cpu.ReadLinear(cpu.MemoryLinear(in i, 1, AccessKind.Read), 1);
    private static ushort Mem16(SoftwareCpu cpu, in Instruction i) => (ushort)cpu.ReadLinear(cpu.MemoryLinear(in i, 2, AccessKind.Read), 2);
    private static uint Mem32(SoftwareCpu cpu, in Instruction i) => (uint)cpu.ReadLinear(cpu.MemoryLinear(in i, 4, AccessKind.Read), 4);

    private static ref ulong Dest32(SoftwareCpu cpu, in Instruction i) => ref cpu.GprRef(i.Op0Register - Register.EAX);
    private static ref ulong Dest64(SoftwareCpu cpu, in Instruction i) => ref cpu.GprRef(i.Op0Register - Register.RAX);

    private static void Zx32From8R(SoftwareCpu cpu, in Instruction i) => Dest32(cpu, in i) = Reg8(cpu, in i);
    private static void Zx32From8M(SoftwareCpu cpu, in Instruction i) => Dest32(cpu, in i) = Mem8(cpu, in i);
    private static void Zx32From16R(SoftwareCpu cpu, in Instruction i) => Dest32(cpu, in i) = Reg16(cpu, in i);
    private static void Zx32From16M(SoftwareCpu cpu, in Instruction i) => Dest32(cpu, in i) = Mem16(cpu, in i);
    private static void Zx64From8R(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = Reg8(cpu, in i);
    private static void Zx64From8M(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = Mem8(cpu, in i);
    private static void Zx64From16R(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = Reg16(cpu, in i);
    private static void Zx64From16M(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = Mem16(cpu, in i);

    private static void Sx32From8R(SoftwareCpu cpu, in Instruction i) => Dest32(cpu, in i) = (uint)(sbyte)Reg8(cpu, in i);
    private static void Sx32From8M(SoftwareCpu cpu, in Instruction i) => Dest32(cpu, in i) = (uint)(sbyte)Mem8(cpu, in i);
    private static void Sx32From16R(SoftwareCpu cpu, in Instruction i) => Dest32(cpu, in i) = (uint)(short)Reg16(cpu, in i);
    private static void Sx32From16M(SoftwareCpu cpu, in Instruction i) => Dest32(cpu, in i) = (uint)(short)Mem16(cpu, in i);
    private static void Sx64From8R(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = (ulong)(sbyte)Reg8(cpu, in i);
    private static void Sx64From8M(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = (ulong)(sbyte)Mem8(cpu, in i);
    private static void Sx64From16R(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = (ulong)(short)Reg16(cpu, in i);
    private static void Sx64From16M(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = (ulong)(short)Mem16(cpu, in i);
    private static void Sx64From32R(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = (ulong)(int)Reg32(cpu, in i);
    private static void Sx64From32M(SoftwareCpu cpu, in Instruction i) => Dest64(cpu, in i) = (ulong)(int)Mem32(cpu, in i);
}
