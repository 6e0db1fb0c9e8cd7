using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// MOV and its relatives: MOVZX/MOVSX/MOVSXD, MOVNTI, LEA, XLAT, the CBW/CWD families, and the NOP forms
/// (multi-byte NOP, reserved-NOP opcodes, PAUSE, ENDBR). XCHG, CMOVcc, SETcc and BSWAP live with the ALU.
/// </summary>
internal static unsafe class DataMove
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Mov, &Mov);
        // MOV to and from control and debug registers by encoding, so plain MOV needs no register test.
        foreach (var c in Enum.GetValues<Code>())
            if (c.Mnemonic() == Mnemonic.Mov && IsControlMove(c)) t.Set(c, &SystemInstructions.MovControl);
        t.Set(Mnemonic.Salc, &Salc);
        t.Set(Mnemonic.Movzx, &Movzx);
        t.Set(Mnemonic.Movsx, &Movsx);
        t.Set(Mnemonic.Movsxd, &Movsx);
        t.Set(Mnemonic.Lea, &Lea);
        // MOVNTI's non-temporal hint means nothing without caches: a plain store.
        t.Set(Mnemonic.Movnti, &Mov);
        t.Set(Mnemonic.Xlatb, &Xlat);
        t.Set(Mnemonic.Cbw, &Cbw);
        t.Set(Mnemonic.Cwde, &Cwde);
        t.Set(Mnemonic.Cdqe, &Cdqe);
        t.Set(Mnemonic.Cwd, &Cwd);
        t.Set(Mnemonic.Cdq, &Cdq);
        t.Set(Mnemonic.Cqo, &Cqo);
        // NOP, 0F 1F /0 multi-byte NOP, the 0F 18-1F reserved-NOP space, PAUSE, and the CET markers (we have
        // no CET, and ENDBR is a NOP on processors without it). A memory operand is never accessed.
        t.Set(Mnemonic.Nop, &Nop);
        t.Set(Mnemonic.Reservednop, &Nop);
        t.Set(Mnemonic.Pause, &Nop);
        t.Set(Mnemonic.Endbr64, &Nop);
        t.Set(Mnemonic.Endbr32, &Nop);
        // MOVBE is not advertised (CPUID.1:ECX.MOVBE = 0), so it is undefined rather than missing.
        t.Set(Mnemonic.Movbe, &Undefined);
    }

    private static void Undefined(SoftwareCpu cpu, in Instruction i) => throw CpuFault.InvalidOpcode();

    private static void Nop(SoftwareCpu cpu, in Instruction i) { }

    /// <summary>XLAT: AL := [seg:(E/R)BX + zero-extended AL], with the address size (Iced gives BX/EBX/RBX + AL).</summary>
    private static void Xlat(SoftwareCpu cpu, in Instruction i) => cpu.WriteGpr(Iced.Intel.Register.AL, cpu.ReadOperand(in i, 0));

    // Sign extension within the accumulator: CBW/CWDE/CDQE widen in place, CWD/CDQ/CQO fill (E/R)DX.
    private static void Cbw(SoftwareCpu cpu, in Instruction i) => cpu.WriteGpr(Iced.Intel.Register.AX, (ulong)(sbyte)cpu.Gprs[Gpr.RAX]);
    private static void Cwde(SoftwareCpu cpu, in Instruction i) => cpu.WriteGpr(Iced.Intel.Register.EAX, (ulong)(short)cpu.Gprs[Gpr.RAX]);
    private static void Cdqe(SoftwareCpu cpu, in Instruction i) => cpu.Gprs[Gpr.RAX] = (ulong)(int)cpu.Gprs[Gpr.RAX];
    private static void Cwd(SoftwareCpu cpu, in Instruction i) => cpu.WriteGpr(Iced.Intel.Register.DX, (short)cpu.Gprs[Gpr.RAX] < 0 ? 0xFFFFUL : 0);
    private static void Cdq(SoftwareCpu cpu, in Instruction i) => cpu.WriteGpr(Iced.Intel.Register.EDX, (int)cpu.Gprs[Gpr.RAX] < 0 ? 0xFFFF_FFFFUL : 0);
    private static void Cqo(SoftwareCpu cpu, in Instruction i) => cpu.Gprs[Gpr.RDX] = (long)cpu.Gprs[Gpr.RAX] < 0 ? ulong.MaxValue : 0;

    private static bool IsControlMove(Code c)
    {
        var oc = c.ToOpCode();
        for (var k = 0; k < oc.OpCount; k++)
            if (oc.GetOpKind(k) is OpCodeOperandKind.cr_reg or OpCodeOperandKind.dr_reg) return true;
        return false;
    }

    // MOV Sreg is registered by Segments; MOV to/from control and debug registers by SystemInstructions.
    private static void Mov(SoftwareCpu cpu, in Instruction i) => cpu.WriteOperand(in i, 0, cpu.ReadOperand(in i, 1));

    private static void Movzx(SoftwareCpu cpu, in Instruction i) => cpu.WriteGpr(i.Op0Register, cpu.ReadOperand(in i, 1));

    private static void Movsx(SoftwareCpu cpu, in Instruction i)
    {
        var srcSize = SoftwareCpu.OperandSize(in i, 1);
        cpu.WriteGpr(i.Op0Register, (ulong)SoftwareCpu.SignExtend(cpu.ReadOperand(in i, 1), srcSize));
    }

    /// <summary>
    /// LEA: the effective address computed in the address size, then truncated or zero-extended to the
    /// operand size (SDM Table 3-54). No segment is added and memory is not touched. LEA with a register
    /// source does not decode (Iced gives INVALID, which raises #UD).
    /// </summary>
    private static void Lea(SoftwareCpu cpu, in Instruction i) => cpu.WriteGpr(i.Op0Register, cpu.EffectiveAddress(in i));

    /// <summary>SALC (undocumented D6, 16/32-bit modes): AL = CF ? 0xFF : 0, flags unchanged.</summary>
    private static void Salc(SoftwareCpu cpu, in Instruction i) =>
        cpu.WriteGpr(Iced.Intel.Register.AL, cpu.GetCF() ? 0xFFUL : 0);
}
