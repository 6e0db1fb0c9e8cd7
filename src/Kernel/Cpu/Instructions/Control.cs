using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>Control transfer: JMP, Jcc, CALL, RET, LOOP, JrCXZ (near forms); far forms, INT and IRET.</summary>
internal static unsafe class Control
{
    public static void Register(Dispatch.HandlerTable t)
    {
        foreach (var m in new[] { Mnemonic.Jo, Mnemonic.Jno, Mnemonic.Jb, Mnemonic.Jae, Mnemonic.Je, Mnemonic.Jne, Mnemonic.Jbe,
                     Mnemonic.Ja, Mnemonic.Js, Mnemonic.Jns, Mnemonic.Jp, Mnemonic.Jnp, Mnemonic.Jl, Mnemonic.Jge, Mnemonic.Jle, Mnemonic.Jg })
            t.Set(m, &Jcc);
        t.Set(Mnemonic.Jmp, &Jmp);
        t.Set(Mnemonic.Call, &Call);
        t.Set(Mnemonic.Bound, &Bound);
        t.Set(Mnemonic.Ret, &Ret);
        t.Set(Mnemonic.Loop, &Loop);
        t.Set(Mnemonic.Loope, &Loop);
        t.Set(Mnemonic.Loopne, &Loop);
        t.Set(Mnemonic.Jcxz, &Jrcxz);
        t.Set(Mnemonic.Jecxz, &Jrcxz);
        t.Set(Mnemonic.Jrcxz, &Jrcxz);
    }

    /// <summary>
    /// The count register of LOOPcc/JrCXZ is chosen by the address size (CX, ECX or RCX), which Iced encodes
    /// in the code name; the branch target is already truncated to the operand size.
    /// </summary>
    private static int CountSize(Code c) => c switch
    {
        Code.Loop_rel8_16_CX or Code.Loop_rel8_32_CX or Code.Loope_rel8_16_CX or Code.Loope_rel8_32_CX or
            Code.Loopne_rel8_16_CX or Code.Loopne_rel8_32_CX or Code.Jcxz_rel8_16 or Code.Jcxz_rel8_32 => 2,
        Code.Loop_rel8_16_ECX or Code.Loop_rel8_32_ECX or Code.Loop_rel8_64_ECX or Code.Loope_rel8_16_ECX or
            Code.Loope_rel8_32_ECX or Code.Loope_rel8_64_ECX or Code.Loopne_rel8_16_ECX or Code.Loopne_rel8_32_ECX or
            Code.Loopne_rel8_64_ECX or Code.Jecxz_rel8_16 or Code.Jecxz_rel8_32 or Code.Jecxz_rel8_64 => 4,
        _ => 8,
    };

    /// <summary>LOOP/LOOPE/LOOPNE: decrement the count (flags untouched), branch if non-zero and ZF matches.</summary>
    private static void Loop(SoftwareCpu cpu, in Instruction i)
    {
        var size = CountSize(i.Code);
        var mask = SoftwareCpu.SizeMask(size);
        var count = (cpu.Gprs[Gpr.RCX] - 1) & mask;
        var take = count != 0 && i.Mnemonic switch
        {
            Mnemonic.Loope => cpu.GetZF(),
            Mnemonic.Loopne => !cpu.GetZF(),
            _ => true,
        };
        // The target is checked before the count register changes, so a #GP leaves it intact.
        if (take) JumpNear(cpu, i.NearBranchTarget);
        cpu.Gprs[Gpr.RCX] = size == 4 ? count : (cpu.Gprs[Gpr.RCX] & ~mask) | count;
    }

    private static void Jrcxz(SoftwareCpu cpu, in Instruction i)
    {
        if ((cpu.Gprs[Gpr.RCX] & SoftwareCpu.SizeMask(CountSize(i.Code))) == 0) JumpNear(cpu, i.NearBranchTarget);
    }

    /// <summary>Sets RIP to a near target, checking the CS limit outside 64-bit mode.</summary>
    internal static void JumpNear(SoftwareCpu cpu, ulong target)
    {
        if (cpu.Bitness != 64) cpu.CheckCodeLimit(target, 1);
        else if (!SoftwareCpu.IsCanonical(target)) throw CpuFault.General(0);
        cpu.Rip = target;
    }

    private static void Jcc(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Condition(i.ConditionCode)) JumpNear(cpu, i.NearBranchTarget);
    }

    private static void Jmp(SoftwareCpu cpu, in Instruction i)
    {
        switch (i.Op0Kind)
        {
            case OpKind.NearBranch16:
            case OpKind.NearBranch32:
            case OpKind.NearBranch64:
                JumpNear(cpu, i.NearBranchTarget);
                return;
            default:
                // Far forms are registered by FarTransfers.
                JumpNear(cpu, cpu.ReadOperand(in i, 0));
                return;
        }
    }

    private static void Call(SoftwareCpu cpu, in Instruction i)
    {
        switch (i.Op0Kind)
        {
            case OpKind.NearBranch16:
            case OpKind.NearBranch32:
            case OpKind.NearBranch64:
            {
                var size = i.Op0Kind == OpKind.NearBranch16 ? 2 : i.Op0Kind == OpKind.NearBranch32 ? 4 : 8;
                var target = i.NearBranchTarget;
                if (cpu.Bitness != 64) cpu.CheckCodeLimit(target, 1);
                cpu.Push(cpu.Rip, size);
                cpu.Rip = target;
                return;
            }
            default:
            {
                // Far forms are registered by FarTransfers.
                var size = SoftwareCpu.OperandSize(in i, 0);
                var target = cpu.ReadOperand(in i, 0);
                if (cpu.Bitness != 64) cpu.CheckCodeLimit(target, 1);
                else if (!SoftwareCpu.IsCanonical(target)) throw CpuFault.General(0);
                cpu.Push(cpu.Rip, size);
                cpu.Rip = target;
                return;
            }
        }
    }

    private static void Ret(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.Code switch
        {
            Code.Retnw or Code.Retnw_imm16 => 2,
            Code.Retnd or Code.Retnd_imm16 => 4,
            _ => 8,
        };
        var target = cpu.PeekStack(0, size);
        if (cpu.Bitness != 64) cpu.CheckCodeLimit(target, 1);
        else if (!SoftwareCpu.IsCanonical(target)) throw CpuFault.General(0);
        var release = (ulong)size + (i.Op0Kind == OpKind.Immediate16 ? i.Immediate16 : 0u);
        cpu.SetStackPointer(cpu.Gprs[Gpr.RSP] + release);
        cpu.Rip = target;
    }

    /// <summary>
    /// BOUND (16/32-bit modes only; Iced gives no 64-bit encoding): #BR unless lower &lt;= index &lt;= upper,
    /// signed, with the bounds pair in memory.
    /// </summary>
    private static void Bound(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.Op0Register.GetSize();
        var la = cpu.MemoryLinear(in i, 2 * size, AccessKind.Read);
        var lower = SoftwareCpu.SignExtend(cpu.ReadLinear(la, size), size);
        var upper = SoftwareCpu.SignExtend(cpu.ReadLinear(la + (ulong)size, size), size);
        var index = SoftwareCpu.SignExtend(cpu.ReadGpr(i.Op0Register), size);
        if (index < lower || index > upper) throw CpuFault.Of(Vectors.BR);
    }
}
