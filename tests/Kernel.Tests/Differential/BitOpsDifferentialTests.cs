using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// BT/BTS/BTR/BTC (register and immediate offsets; register offsets into a memory bit string, negative
/// too; LOCKed forms), BSF/BSR (zero sources included), SETcc, CMOVcc, BSWAP against the host.
/// Defined flags: BT* define CF and leave ZF alone (OF, SF, AF, PF undefined); BSF/BSR define ZF (the
/// rest undefined); SETcc, CMOVcc, BSWAP change no flags.
/// </summary>
[Collection("Native")]
public class BitOpsDifferentialTests
{
    /// <summary>Keeps a register bit offset into memory within ±4 KiB of the operand (the scratch buffer).</summary>
    private static void ConstrainBitOffset(DiffHarness h, Form f, ulong[] regs)
    {
        if (!f.HasMemory || f.Code.ToOpCode().GetOpKind(1) is not (OpCodeOperandKind.r16_reg or OpCodeOperandKind.r32_reg or OpCodeOperandKind.r64_reg))
            return;
        var idx = f.RegIndex[1];
        var v = (ulong)(long)(h.Rng.Next(3) == 0 ? h.Rng.Next(-200, 200) : h.Rng.Next(-0x7FFF, 0x7FFF));
        regs[idx] = f.Size switch
        {
            2 => (regs[idx] & ~0xFFFFUL) | (v & 0xFFFF),
            4 => (regs[idx] & ~0xFFFF_FFFFUL) | (v & 0xFFFF_FFFF),
            _ => v,
        };
    }

    [SkippableFact]
    public void BitTestsMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(31);
        h.RunForms(Forms.CodesOf(Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc), (_, _) => CF | ZF, 300,
            adjust: (f, regs) => ConstrainBitOffset(h, f, regs));
        h.AssertClean(4000);
    }

    /// <summary>Sets the source of a BSF/BSR to zero in one case of eight.</summary>
    private static void MaybeZeroSource(DiffHarness h, Form f, ulong[] regs)
    {
        if (h.Rng.Next(8) != 0) return;
        if (f.HasMemory) h.Poke(regs[f.MemBase] + (ulong)(long)f.Disp, 0, f.Size);
        else regs[f.RegIndex[1]] &= f.Size == 8 ? 0 : ~((1UL << (f.Size * 8)) - 1);
    }

    [SkippableFact]
    public void BitScansMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(32);
        h.RunForms(Forms.CodesOf(Mnemonic.Bsf, Mnemonic.Bsr), (_, _) => ZF, 400, adjust: (f, regs) => MaybeZeroSource(h, f, regs));
        h.AssertClean(2000);
    }

    [SkippableFact]
    public void SetccCmovccBswapMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(33);
        var setcc = Forms.CodesOf(Mnemonic.Seto, Mnemonic.Setno, Mnemonic.Setb, Mnemonic.Setae, Mnemonic.Sete, Mnemonic.Setne,
            Mnemonic.Setbe, Mnemonic.Seta, Mnemonic.Sets, Mnemonic.Setns, Mnemonic.Setp, Mnemonic.Setnp, Mnemonic.Setl,
            Mnemonic.Setge, Mnemonic.Setle, Mnemonic.Setg);
        var cmov = Forms.CodesOf(Mnemonic.Cmovo, Mnemonic.Cmovno, Mnemonic.Cmovb, Mnemonic.Cmovae, Mnemonic.Cmove, Mnemonic.Cmovne,
            Mnemonic.Cmovbe, Mnemonic.Cmova, Mnemonic.Cmovs, Mnemonic.Cmovns, Mnemonic.Cmovp, Mnemonic.Cmovnp, Mnemonic.Cmovl,
            Mnemonic.Cmovge, Mnemonic.Cmovle, Mnemonic.Cmovg);
        // BSWAP of a 16-bit register is undefined: compared in the AMD-host test only.
        var bswap = Forms.CodesOf(Mnemonic.Bswap).Where(c => c != Code.Bswap_r16);
        h.RunForms(setcc.Concat(cmov).Concat(bswap), (_, _) => AllArith, 100);
        h.AssertClean(3000);
    }

    /// <summary>MOVZX, MOVSX, MOVSXD: every encoding, register (including AH..BH) and memory sources.</summary>
    [SkippableFact]
    public void MovzxMovsxMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(35);
        h.RunForms(Forms.CodesOf(Mnemonic.Movzx, Mnemonic.Movsx, Mnemonic.Movsxd), (_, _) => AllArith, 100, registerVariants: 4);
        h.AssertClean(2000);
    }

    /// <summary>BT*, BSF/BSR undefined flags and BSWAP r16 (undefined result) as the AMD host produces them.</summary>
    [SkippableFact]
    public void UndefinedFlagsAndResultsMatchAmdHost()
    {
        RequireAmdHost();
        using var h = new DiffHarness(34) { StrictUndefined = true };
        h.RunForms(Forms.CodesOf(Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc), (_, _) => AllArith, 24,
            adjust: (f, regs) => ConstrainBitOffset(h, f, regs));
        h.RunForms(Forms.CodesOf(Mnemonic.Bsf, Mnemonic.Bsr), (_, _) => AllArith, 64, adjust: (f, regs) => MaybeZeroSource(h, f, regs));
        h.RunForms([Code.Bswap_r16], (_, _) => AllArith, 64);
        h.AssertClean(1000);
    }
}
