using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>x87 control instructions, EMMS, LDMXCSR/STMXCSR and FXSAVE/FXRSTOR against the host.</summary>
[Collection("Native")]
public class FpuControlDifferentialTests
{
    [SkippableFact]
    public void ControlInstructionsMatchHost()
    {
        RequireNative();
        using var h = new SimdHarness(41);
        var codes = Forms.CodesOf(Mnemonic.Fninit, Mnemonic.Fnstcw, Mnemonic.Fldcw, Mnemonic.Fnstsw, Mnemonic.Fnclex,
            Mnemonic.Ffree, Mnemonic.Fincstp, Mnemonic.Fdecstp, Mnemonic.Fnop, Mnemonic.Emms, Mnemonic.Stmxcsr).ToList();
        Assert.True(codes.Count >= 11);
        h.RunCodes(codes, 30);
        h.AssertClean(300);
    }

    /// <summary>LDMXCSR with every writable bit pattern (reserved bits are tested for #GP separately: they would kill the host).</summary>
    [SkippableFact]
    public void LdmxcsrMatchesHost()
    {
        RequireNative();
        using var h = new SimdHarness(42);
        foreach (var code in Forms.CodesOf(Mnemonic.Ldmxcsr))
            for (var k = 0; k < 100; k++)
            {
                h.NewState();
                var regs = h.RandomRegs();
                var bytes = h.Build(code, regs, memory: true)!;
                // All exceptions stay masked so the host never traps later in the runner.
                var v = (uint)h.Rng.Next(0x10000) | 0x1F80;
                BitConverter.TryWriteBytes(h.Buffer.AsSpan((int)(h.LastAddress - NativeExecutor.BufferAddr)), v);
                h.Check(bytes, regs);
            }
        h.AssertClean(100);
    }

    /// <summary>FXSAVE/FXSAVE64 store the image; FXRSTOR/FXRSTOR64 load one (with valid MXCSR and no pending x87 exception).</summary>
    [SkippableFact]
    public void FxsaveFxrstorMatchHost()
    {
        RequireNative();
        using var h = new SimdHarness(43);
        foreach (var code in Forms.CodesOf(Mnemonic.Fxsave, Mnemonic.Fxsave64, Mnemonic.Fxrstor, Mnemonic.Fxrstor64))
            for (var k = 0; k < 40; k++)
            {
                h.NewState();
                var regs = h.RandomRegs();
                var bytes = h.Build(code, regs, memory: true)!;
                var image = h.Fx.ToArray();
                h.NewState();
                // FIP/FDP/FOP are host-specific (AMD stores them only with an exception pending): keep them zero.
                image.AsSpan(6, 18).Clear();
                var at = (int)(h.LastAddress - NativeExecutor.BufferAddr);
                image.AsSpan(0, 512).CopyTo(h.Buffer.AsSpan(at));
                // MXCSR_MASK is the host's (AMD Zen sets bit 17, misaligned-SSE mode); ours is Intel's 0xFFFF.
                h.IgnoreMemory.Clear();
                h.IgnoreMemory.Add((at + 28, 4));
                h.Check(bytes, regs);
            }
        h.AssertClean(160);
    }
}

/// <summary>FNSTENV/FNSAVE (host layout, FIP/FDP/FOP/FCS/FDS ignored) and FLDENV/FRSTOR round trips against the host.</summary>
[Collection("Native")]
public class FpuEnvironmentDifferentialTests
{
    [SkippableFact]
    public void StoreAndLoadEnvironmentMatchHost()
    {
        RequireNative();
        using var h = new SimdHarness(44) { Floats = SimdHarness.FloatKind.Extended };
        var cases = 0;
        foreach (var code in Forms.CodesOf(Mnemonic.Fnstenv, Mnemonic.Fnsave, Mnemonic.Fldenv, Mnemonic.Frstor))
            for (var k = 0; k < 40; k++)
            {
                h.NewState();
                var regs = h.RandomRegs();
                var bytes = h.Build(code, regs, memory: true)!;
                var at = (int)(h.LastAddress - NativeExecutor.BufferAddr);
                var wide = code.ToOpCode().MemorySize is MemorySize.FpuEnv28 or MemorySize.FpuState108;
                if (code.Mnemonic() is Mnemonic.Fldenv or Mnemonic.Frstor)
                {
                    // A loadable image: masks set, no pending exception, random tags and registers.
                    var img = h.Buffer.AsSpan(at);
                    BitConverter.TryWriteBytes(img, (ushort)(0x37F | (h.Rng.Next(4) << 10)));
                    BitConverter.TryWriteBytes(img[(wide ? 4 : 2)..], (ushort)(h.Rng.Next(8) << 11));
                    BitConverter.TryWriteBytes(img[(wide ? 8 : 4)..], (ushort)h.Rng.Next(65536));
                }
                h.IgnoreMemory.Clear();
                if (wide) h.IgnoreMemory.Add((at + 12, 16)); else h.IgnoreMemory.Add((at + 6, 8));
                h.Check(bytes, regs);
                cases++;
            }
        Assert.True(cases >= 300);
        h.AssertClean(300);
    }
}
