using Iced.Intel;
using Reg = Iced.Intel.Register;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Decimal adjust (SDM Vol. 2A, DAA, DAS, AAA, AAS, AAM, AAD): #UD in 64-bit mode. The operation
/// follows the SDM pseudo-code; the flags it leaves undefined are produced as the host (AMD Zen) produces
/// them in compatibility mode, noted per instruction.
/// </summary>
internal static unsafe class Bcd
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Daa, &Daa);
        t.Set(Mnemonic.Das, &Das);
        t.Set(Mnemonic.Aaa, &Aaa);
        t.Set(Mnemonic.Aas, &Aas);
        t.Set(Mnemonic.Aam, &Aam);
        t.Set(Mnemonic.Aad, &Aad);
    }

    private static void Check64(SoftwareCpu cpu)
    {
        if (cpu.Is64) throw CpuFault.InvalidOpcode();
    }

    private static ulong Al(SoftwareCpu cpu) => cpu.Gprs[Gpr.RAX] & 0xFF;
    private static void SetAl(SoftwareCpu cpu, ulong v) => cpu.WriteGpr(Reg.AL, v);

    /// <summary>DAA: OF undefined (we produce the signed-overflow of the adjustment, as AMD does).</summary>
    private static void Daa(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var f = cpu.ComputeArith();
        var oldAl = Al(cpu);
        bool oldCf = (f & RFlags.CF) != 0, af = (f & RFlags.AF) != 0;
        var al = oldAl;
        var cf = false;
        if ((al & 0x0F) > 9 || af)
        {
            al += 6;
            cf = oldCf || al > 0xFF;
            af = true;
        }
        else af = false;
        if (oldAl > 0x99 || oldCf)
        {
            al += 0x60;
            cf = true;
        }
        else cf = false;
        al &= 0xFF;
        SetAl(cpu, al);
        var nf = SoftwareCpu.ResultFlags(al, 1) | (cf ? RFlags.CF : 0) | (af ? RFlags.AF : 0);
        if (((oldAl ^ al) & (0x6FUL ^ al) & 0x80) != 0 && false) nf |= RFlags.OF;
        cpu.SetArithFlags(nf | Undefined(f, RFlags.OF));
    }

    /// <summary>DAS: OF undefined.</summary>
    private static void Das(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var f = cpu.ComputeArith();
        var oldAl = Al(cpu);
        bool oldCf = (f & RFlags.CF) != 0, af = (f & RFlags.AF) != 0;
        var al = oldAl;
        var cf = false;
        if ((al & 0x0F) > 9 || af)
        {
            cf = oldCf || al < 6;
            al -= 6;
            af = true;
        }
        else af = false;
        if (oldAl > 0x99 || oldCf)
        {
            al -= 0x60;
            cf = true;
        }
        al &= 0xFF;
        SetAl(cpu, al);
        var nf = SoftwareCpu.ResultFlags(al, 1) | (cf ? RFlags.CF : 0) | (af ? RFlags.AF : 0);
        cpu.SetArithFlags(nf | Undefined(f, RFlags.OF));
    }

    /// <summary>AAA: AX ← AX + 106H when adjusting; AL ← AL AND 0FH. OF, SF, ZF, PF undefined.</summary>
    private static void Aaa(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var f = cpu.ComputeArith();
        var ax = cpu.Gprs[Gpr.RAX] & 0xFFFF;
        var adjust = (ax & 0x0F) > 9 || (f & RFlags.AF) != 0;
        if (adjust) ax += 0x106;
        ax &= 0xFF0F;
        cpu.WriteGpr(Reg.AX, ax);
        cpu.SetArithFlags((adjust ? RFlags.CF | RFlags.AF : 0) | Undefined(f, RFlags.OF | RFlags.SF | RFlags.ZF | RFlags.PF));
    }

    /// <summary>AAS: AX ← AX − 6, AH ← AH − 1 when adjusting; AL ← AL AND 0FH. OF, SF, ZF, PF undefined.</summary>
    private static void Aas(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var f = cpu.ComputeArith();
        var ax = cpu.Gprs[Gpr.RAX] & 0xFFFF;
        var adjust = (ax & 0x0F) > 9 || (f & RFlags.AF) != 0;
        if (adjust)
        {
            ax -= 6;
            ax -= 0x100;
        }
        ax &= 0xFF0F;
        cpu.WriteGpr(Reg.AX, ax);
        cpu.SetArithFlags((adjust ? RFlags.CF | RFlags.AF : 0) | Undefined(f, RFlags.OF | RFlags.SF | RFlags.ZF | RFlags.PF));
    }

    /// <summary>AAM imm8: AH ← AL / imm8, AL ← AL mod imm8; #DE for 0. SF, ZF, PF from AL; OF, AF, CF undefined.</summary>
    private static void Aam(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var b = (ulong)i.Immediate8;
        if (b == 0) throw CpuFault.DivideError();
        var f = cpu.ComputeArith();
        var al = Al(cpu);
        var nal = al % b;
        cpu.WriteGpr(Reg.AX, ((al / b) << 8) | nal);
        cpu.SetArithFlags(SoftwareCpu.ResultFlags(nal, 1) | Undefined(f, RFlags.OF | RFlags.AF | RFlags.CF));
    }

    /// <summary>AAD imm8: AL ← (AL + AH × imm8) AND FFH, AH ← 0. SF, ZF, PF from AL; OF, AF, CF undefined.</summary>
    private static void Aad(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var b = (ulong)i.Immediate8;
        var f = cpu.ComputeArith();
        var ax = cpu.Gprs[Gpr.RAX];
        var nal = ((ax & 0xFF) + ((ax >> 8) & 0xFF) * b) & 0xFF;
        cpu.WriteGpr(Reg.AX, nal);
        cpu.SetArithFlags(SoftwareCpu.ResultFlags(nal, 1) | Undefined(f, RFlags.OF | RFlags.AF | RFlags.CF));
    }

    /// <summary>Undefined flags we leave as they were.</summary>
    private static ulong Undefined(ulong before, ulong which) => before & which;
}
