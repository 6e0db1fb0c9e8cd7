using Iced.Intel;
using Reg = Iced.Intel.Register;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Decimal adjust (SDM Vol. 2A, DAA, DAS, AAA, AAS, AAM, AAD): #UD in 64-bit mode. Results and defined
/// flags follow the SDM's Operation sections. The flags the SDM leaves undefined are produced as the host
/// (AMD Zen) produces them, measured in compatibility mode over every AL × CF × AF input:
///   DAA/DAS OF: the signed overflow of AL ± the applied adjustment (06H, 60H or 66H);
///   AAA/AAS OF = 0, SF/ZF from the 16-bit AX before AL is masked, PF from its low byte;
///   AAM OF = AF = CF = 0;
///   AAD CF/AF/OF: those of the byte addition AL + (AH × imm8).
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

    private static ulong Flag(bool set, ulong flag) => set ? flag : 0;

    /// <summary>
    /// DAA: if the low digit is above 9 or AF, add 6 (CF |= carry, AF = 1); if the old AL was above 99H or
    /// CF, add 60H (CF = 1), else CF = 0.
    /// </summary>
    private static void Daa(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var f = cpu.ComputeArith();
        var oldAl = cpu.Gprs[Gpr.RAX] & 0xFF;
        bool oldCf = (f & RFlags.CF) != 0, af = (f & RFlags.AF) != 0, cf;
        ulong adjust = 0;
        if ((oldAl & 0x0F) > 9 || af)
        {
            adjust = 0x06;
            af = true;
        }
        if (oldAl > 0x99 || oldCf)
        {
            adjust |= 0x60;
            cf = true;
        }
        else cf = false;
        var al = (oldAl + adjust) & 0xFF;
        cpu.WriteGpr(Reg.AL, al);
        var of = ((oldAl ^ al) & (adjust ^ al) & 0x80) != 0;
        cpu.SetArithFlags(SoftwareCpu.ResultFlags(al, 1) | Flag(cf, RFlags.CF) | Flag(af, RFlags.AF) | Flag(of, RFlags.OF));
    }

    /// <summary>
    /// DAS: if the low digit is above 9 or AF, subtract 6 (CF = old CF or the borrow, AF = 1); if the old AL
    /// was above 99H or CF, subtract 60H and set CF (the SDM has no "else CF ← 0" here: CF keeps the borrow).
    /// </summary>
    private static void Das(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var f = cpu.ComputeArith();
        var oldAl = cpu.Gprs[Gpr.RAX] & 0xFF;
        bool oldCf = (f & RFlags.CF) != 0, af = (f & RFlags.AF) != 0;
        var cf = false;
        ulong adjust = 0;
        if ((oldAl & 0x0F) > 9 || af)
        {
            adjust = 0x06;
            cf = oldCf || oldAl < 6;
            af = true;
        }
        else af = false;
        if (oldAl > 0x99 || oldCf)
        {
            adjust |= 0x60;
            cf = true;
        }
        var al = (oldAl - adjust) & 0xFF;
        cpu.WriteGpr(Reg.AL, al);
        var of = ((oldAl ^ adjust) & (oldAl ^ al) & 0x80) != 0;
        cpu.SetArithFlags(SoftwareCpu.ResultFlags(al, 1) | Flag(cf, RFlags.CF) | Flag(af, RFlags.AF) | Flag(of, RFlags.OF));
    }

    /// <summary>AAA/AAS flags: CF = AF = adjusted; SF/ZF/PF (undefined) from the 16-bit AX before masking.</summary>
    private static void FinishAscii(SoftwareCpu cpu, ulong ax, bool adjusted)
    {
        cpu.WriteGpr(Reg.AX, ax & 0xFF0F);
        var f = SoftwareCpu.ParityFlag(ax) | Flag((ax & 0xFFFF) == 0, RFlags.ZF) | Flag((ax & 0x8000) != 0, RFlags.SF);
        cpu.SetArithFlags(f | Flag(adjusted, RFlags.CF | RFlags.AF));
    }

    /// <summary>AAA: if the low digit of AL is above 9 or AF: AX ← AX + 106H, CF = AF = 1; then AL ← AL AND 0FH.</summary>
    private static void Aaa(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var ax = cpu.Gprs[Gpr.RAX] & 0xFFFF;
        var adjust = (ax & 0x0F) > 9 || (cpu.ComputeArith() & RFlags.AF) != 0;
        if (adjust) ax = (ax + 0x106) & 0xFFFF;
        FinishAscii(cpu, ax, adjust);
    }

    /// <summary>AAS: if the low digit of AL is above 9 or AF: AX ← AX − 6, AH ← AH − 1, CF = AF = 1; then AL ← AL AND 0FH.</summary>
    private static void Aas(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var ax = cpu.Gprs[Gpr.RAX] & 0xFFFF;
        var adjust = (ax & 0x0F) > 9 || (cpu.ComputeArith() & RFlags.AF) != 0;
        if (adjust) ax = (ax - 6 - 0x100) & 0xFFFF;
        FinishAscii(cpu, ax, adjust);
    }

    /// <summary>AAM imm8: AH ← AL / imm8, AL ← AL mod imm8; #DE for imm8 = 0. SF, ZF, PF from AL; OF, AF, CF cleared.</summary>
    private static void Aam(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var b = (ulong)i.Immediate8;
        if (b == 0) throw CpuFault.DivideError();
        var al = cpu.Gprs[Gpr.RAX] & 0xFF;
        var nal = al % b;
        cpu.WriteGpr(Reg.AX, ((al / b) << 8) | nal);
        cpu.SetArithFlags(SoftwareCpu.ResultFlags(nal, 1));
    }

    /// <summary>AAD imm8: AL ← (AL + AH × imm8) AND FFH, AH ← 0. SF, ZF, PF from AL; CF, AF, OF those of the byte addition.</summary>
    private static void Aad(SoftwareCpu cpu, in Instruction i)
    {
        Check64(cpu);
        var ax = cpu.Gprs[Gpr.RAX];
        var al = ax & 0xFF;
        var t = (((ax >> 8) & 0xFF) * i.Immediate8) & 0xFF;
        var sum = al + t;
        var nal = sum & 0xFF;
        cpu.WriteGpr(Reg.AX, nal);
        var f = SoftwareCpu.ResultFlags(nal, 1) | Flag(sum > 0xFF, RFlags.CF) | ((al ^ t ^ sum) & RFlags.AF) |
                Flag(((al ^ nal) & (t ^ nal) & 0x80) != 0, RFlags.OF);
        cpu.SetArithFlags(f);
    }
}
