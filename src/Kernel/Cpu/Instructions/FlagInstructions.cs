using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// PUSHF/POPF in every operand size with the privilege rules for IF, IOPL, VM, RF, VIF and VIP
/// (SDM Vol. 2B, POPF; Vol. 3A 20.3 for VME), LAHF/SAHF, and CLC/STC/CMC/CLD/STD.
/// </summary>
internal static unsafe class FlagInstructions
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Pushf, &Pushf);
        t.Set(Mnemonic.Pushfd, &Pushf);
        t.Set(Mnemonic.Pushfq, &Pushf);
        t.Set(Mnemonic.Popf, &Popf);
        t.Set(Mnemonic.Popfd, &Popf);
        t.Set(Mnemonic.Popfq, &Popf);
        t.Set(Mnemonic.Lahf, &Lahf);
        t.Set(Mnemonic.Sahf, &Sahf);
        t.Set(Mnemonic.Clc, &Clc);
        t.Set(Mnemonic.Stc, &Stc);
        t.Set(Mnemonic.Cmc, &Cmc);
        t.Set(Mnemonic.Cld, &Cld);
        t.Set(Mnemonic.Std, &Std);
    }

    private static int FlagsOperandSize(in Instruction i) => i.Code switch
    {
        Code.Pushfw or Code.Popfw => 2,
        Code.Pushfd or Code.Popfd => 4,
        _ => 8,
    };

    /// <summary>
    /// PUSHF: the image has VM and RF clear. In virtual-8086 mode with IOPL &lt; 3 it faults, except the
    /// 16-bit form under CR4.VME, which pushes VIF in place of IF and shows IOPL as 3.
    /// </summary>
    private static void Pushf(SoftwareCpu cpu, in Instruction i)
    {
        var size = FlagsOperandSize(in i);
        var flags = cpu.GetFlags();
        if (cpu.V86Mode && cpu.Iopl < 3)
        {
            if (size != 2 || (cpu.Cr4 & Cr4.VME) == 0) throw CpuFault.General(0);
            flags = (flags & ~RFlags.IF) | ((flags & RFlags.VIF) != 0 ? RFlags.IF : 0) | RFlags.IOPL;
        }
        flags &= ~(RFlags.VM | RFlags.RF);
        cpu.Push(size == 8 ? flags : size == 4 ? (uint)flags : (ushort)flags, size);
    }

    /// <summary>POPF: which bits the popped value may change depends on mode, CPL and IOPL (see the SDM table).</summary>
    private static void Popf(SoftwareCpu cpu, in Instruction i)
    {
        var size = FlagsOperandSize(in i);
        var old = cpu.GetFlags();
        ulong changeable;
        var vifFromIf = false;
        if (cpu.V86Mode)
        {
            if (cpu.Iopl == 3)
                changeable = RFlags.Arith | RFlags.TF | RFlags.IF | RFlags.DF | RFlags.NT | RFlags.AC | RFlags.ID;
            else if (size == 2 && (cpu.Cr4 & Cr4.VME) != 0)
            {
                // VME: IF in the image goes to VIF; setting it with VIP pending, or setting TF, traps to the monitor.
                var image = cpu.PeekStack(0, 2);
                if (((old & RFlags.VIP) != 0 && (image & RFlags.IF) != 0) || (image & RFlags.TF) != 0)
                    throw CpuFault.General(0);
                changeable = RFlags.Arith | RFlags.TF | RFlags.DF | RFlags.NT;
                vifFromIf = true;
            }
            else throw CpuFault.General(0);
        }
        else
        {
            // Everything software may write except VM, VIF and VIP (and RF, cleared below).
            changeable = RFlags.Arith | RFlags.TF | RFlags.DF | RFlags.NT | RFlags.AC | RFlags.ID;
            if (!cpu.ProtectedMode || cpu.Cpl == 0) changeable |= RFlags.IOPL | RFlags.IF;
            else if (cpu.Cpl <= cpu.Iopl) changeable |= RFlags.IF;
        }
        if (size == 2) changeable &= 0xFFFF;

        var value = cpu.PeekStack(0, size);
        var result = (old & ~changeable) | (value & changeable);
        if (vifFromIf) result = (result & ~RFlags.VIF) | ((value & RFlags.IF) != 0 ? RFlags.VIF : 0);
        // The 32- and 64-bit forms clear RF; the 16-bit form cannot reach it.
        if (size != 2) result &= ~RFlags.RF;
        cpu.SetStackPointer(cpu.Gprs[Gpr.RSP] + (ulong)size);
        cpu.SetFlags(result);
        // New IF or TF: let the run loop look for interrupts and single-stepping now.
        if (((old ^ result) & (RFlags.IF | RFlags.TF)) != 0) cpu.EndBlock = true;
    }

    /// <summary>LAHF: AH := SF:ZF:0:AF:0:PF:1:CF. In 64-bit mode only with CPUID's LAHF-SAHF flag.</summary>
    private static void Lahf(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Is64 && !cpu.Model.HasLahfLm) throw CpuFault.InvalidOpcode();
        var f = cpu.GetFlags();
        cpu.WriteGpr(Iced.Intel.Register.AH, (f & 0xD5) | RFlags.Fixed1);
    }

    /// <summary>SAHF: SF, ZF, AF, PF, CF := AH bits 7, 6, 4, 2, 0; OF is kept.</summary>
    private static void Sahf(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Is64 && !cpu.Model.HasLahfLm) throw CpuFault.InvalidOpcode();
        var ah = cpu.ReadGpr(Iced.Intel.Register.AH);
        cpu.SetArithFlags((cpu.ComputeArith() & RFlags.OF) | (ah & 0xD5));
    }

    private static void Clc(SoftwareCpu cpu, in Instruction i) => cpu.SetArithFlags(cpu.ComputeArith() & ~RFlags.CF);

    private static void Stc(SoftwareCpu cpu, in Instruction i) => cpu.SetArithFlags(cpu.ComputeArith() | RFlags.CF);

    private static void Cmc(SoftwareCpu cpu, in Instruction i) => cpu.SetArithFlags(cpu.ComputeArith() ^ RFlags.CF);

    private static void Cld(SoftwareCpu cpu, in Instruction i) => cpu.FlagsRest &= ~RFlags.DF;

    private static void Std(SoftwareCpu cpu, in Instruction i) => cpu.FlagsRest |= RFlags.DF;
}
