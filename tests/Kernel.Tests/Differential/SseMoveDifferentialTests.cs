using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>MMX/SSE/SSE2 data movement against the host: full, scalar, half, MOVD/MOVQ, MOVMSK, masked stores.</summary>
[Collection("Native")]
public class SseMoveDifferentialTests
{
    [SkippableFact]
    public void MovesMatchHost()
    {
        RequireNative();
        using var h = new SimdHarness(51);
        var codes = SimdHarness.BaselineCodes(Mnemonic.Movaps, Mnemonic.Movups, Mnemonic.Movapd, Mnemonic.Movupd, Mnemonic.Movdqa,
            Mnemonic.Movdqu, Mnemonic.Movntdq, Mnemonic.Movntps, Mnemonic.Movntpd, Mnemonic.Movntq, Mnemonic.Movd, Mnemonic.Movq,
            Mnemonic.Movq2dq, Mnemonic.Movdq2q, Mnemonic.Movss, Mnemonic.Movsd, Mnemonic.Movlps, Mnemonic.Movlpd, Mnemonic.Movhps,
            Mnemonic.Movhpd, Mnemonic.Movhlps, Mnemonic.Movlhps, Mnemonic.Pmovmskb, Mnemonic.Movmskps, Mnemonic.Movmskpd).ToList();
        Assert.True(codes.Count > 30);
        h.RunCodes(codes, 25);
        h.AssertClean(900);
    }

    /// <summary>MOVUPS/MOVUPD/MOVDQU with misaligned memory operands (they must not fault).</summary>
    [SkippableFact]
    public void UnalignedMovesMatchHost()
    {
        RequireNative();
        using var h = new SimdHarness(52);
        foreach (var code in SimdHarness.BaselineCodes(Mnemonic.Movups, Mnemonic.Movupd, Mnemonic.Movdqu))
            for (var k = 0; k < 40; k++)
            {
                h.NewState();
                var regs = h.RandomRegs();
                h.Check(h.Build(code, regs, memory: true, misalign: true)!, regs);
            }
        h.AssertClean(200);
    }

    /// <summary>MASKMOVDQU/MASKMOVQ store the selected bytes at [RDI].</summary>
    [SkippableFact]
    public void MaskedStoresMatchHost()
    {
        RequireNative();
        using var h = new SimdHarness(53);
        foreach (var (code, mmx) in new[] { (Code.Maskmovdqu_rDI_xmm_xmm, false), (Code.Maskmovq_rDI_mm_mm, true) })
            for (var k = 0; k < 60; k++)
            {
                h.NewState();
                var regs = h.RandomRegs();
                regs[Actorvisor.Kernel.Cpu.Gpr.RDI] = NativeExecutor.BufferAddr + 0x800 + (ulong)h.Rng.Next(0x100);
                var r1 = mmx ? Register.MM0 + h.Rng.Next(8) : Register.XMM0 + h.Rng.Next(16);
                var r2 = mmx ? Register.MM0 + h.Rng.Next(8) : Register.XMM0 + h.Rng.Next(16);
                var i = mmx ? Instruction.CreateMaskmovq(64, r1, r2) : Instruction.CreateMaskmovdqu(64, r1, r2);
                h.Check(Forms.Encode(i), regs);
            }
        h.AssertClean(120);
    }
}
