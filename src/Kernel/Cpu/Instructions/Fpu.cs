using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// x87 control instructions (SDM Vol. 1, 8.1.x; Vol. 2): FNINIT, FLDCW/FNSTCW, FNSTSW, FNCLEX, FFREE,
/// FINCSTP/FDECSTP, FNOP, FWAIT, EMMS. Registers the other x87/MMX/SSE families (FXSAVE and MXCSR
/// instructions in <see cref="FxSave"/>).
/// </summary>
internal static unsafe class Fpu
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Fninit, &Fninit);
        t.Set(Mnemonic.Fnstcw, &Fnstcw);
        t.Set(Mnemonic.Fldcw, &Fldcw);
        t.Set(Mnemonic.Fnstsw, &Fnstsw);
        t.Set(Mnemonic.Fnclex, &Fnclex);
        t.Set(Mnemonic.Ffree, &Ffree);
        t.Set(Mnemonic.Fincstp, &Fincstp);
        t.Set(Mnemonic.Fdecstp, &Fdecstp);
        t.Set(Mnemonic.Fnop, &Fnop);
        t.Set(Mnemonic.Emms, &Emms);
        // FWAIT by code: it takes precedence over SystemInstructions' mnemonic-wide WAIT.
        t.Set(Code.Wait, &Fwait);
        FxSave.Register(t);
        X87.Register(t);
        FpuEnvironment.Register(t);
    }

    /// <summary>FNINIT (no wait): no pending-exception check.</summary>
    private static void Fninit(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckX87Available();
        cpu.FpuInit();
    }

    private static void Fnstcw(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckX87Available();
        cpu.WriteOperand(in i, 0, cpu.Fcw);
    }

    /// <summary>FLDCW: a waiting instruction; ES and B follow the new masks (unmasking a pending flag sets them).</summary>
    private static void Fldcw(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckX87Waiting();
        var v = (ushort)cpu.ReadOperand(in i, 0);
        cpu.Fcw = FcwBits.Load(v);
        UpdateErrorSummary(cpu);
    }

    /// <summary>ES (and B, which mirrors it) = any exception flag whose mask bit is clear.</summary>
    internal static void UpdateErrorSummary(SoftwareCpu cpu)
    {
        var unmasked = cpu.Fsw & ~cpu.Fcw & 0x3F;
        cpu.Fsw = unmasked != 0 ? (ushort)(cpu.Fsw | FswBits.ES | FswBits.B) : (ushort)(cpu.Fsw & ~(FswBits.ES | FswBits.B));
    }

    /// <summary>FNSTSW m16 / AX.</summary>
    private static void Fnstsw(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckX87Available();
        if (i.Op0Kind == OpKind.Register) cpu.WriteGpr(Iced.Intel.Register.AX, cpu.Fsw);
        else cpu.WriteOperand(in i, 0, cpu.Fsw);
    }

    /// <summary>FNCLEX: clears the exception flags, SF, ES and B.</summary>
    private static void Fnclex(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckX87Available();
        cpu.Fsw &= 0x7F00;
    }

    private static void Ffree(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckX87Waiting();
        var p = (cpu.FpuTop + (i.Op0Register - Iced.Intel.Register.ST0)) & 7;
        cpu.FpuTags = (byte)(cpu.FpuTags & ~(1 << p));
        // C0-C3 are undefined; the AMD host clears C1 and keeps the others.
        cpu.Fsw &= unchecked((ushort)~FswBits.C1);
    }

    private static void Fincstp(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckX87Waiting();
        cpu.FpuTop++;
        cpu.Fsw &= unchecked((ushort)~FswBits.C1);
    }

    private static void Fdecstp(SoftwareCpu cpu, in Instruction i)
    {
        cpu.CheckX87Waiting();
        cpu.FpuTop--;
        cpu.Fsw &= unchecked((ushort)~FswBits.C1);
    }

    private static void Fnop(SoftwareCpu cpu, in Instruction i) => cpu.CheckX87Waiting();

    /// <summary>FWAIT: #NM only when CR0.MP and CR0.TS are both set (SDM Table 2-2), then pending x87 exceptions.</summary>
    private static void Fwait(SoftwareCpu cpu, in Instruction i)
    {
        if ((cpu.Cr0 & (Cr0.MP | Cr0.TS)) == (Cr0.MP | Cr0.TS)) throw CpuFault.DeviceNotAvailable();
        cpu.CheckPendingX87();
    }

    /// <summary>EMMS: leaves MMX mode, every x87 register empty, TOP 0.</summary>
    private static void Emms(SoftwareCpu cpu, in Instruction i)
    {
        if ((cpu.Cr0 & Cr0.EM) != 0) throw CpuFault.InvalidOpcode();
        if ((cpu.Cr0 & Cr0.TS) != 0) throw CpuFault.DeviceNotAvailable();
        cpu.CheckPendingX87();
        cpu.FpuTags = 0;
        // The SDM mentions only the tags; the host (like every MMX instruction) also resets TOP to 0.
        cpu.FpuTop = 0;
    }
}
