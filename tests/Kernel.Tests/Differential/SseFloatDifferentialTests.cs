using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// SSE/SSE2 floating point against the host with random MXCSR rounding modes, DAZ, FTZ and sticky flags
/// (all exceptions masked: an unmasked one would trap the host), on NaNs, infinities, zeros, denormals,
/// and values whose results overflow, underflow and round. Results and MXCSR flags must match exactly.
/// </summary>
[Collection("Native")]
public class SseFloatDifferentialTests
{
    private static readonly Mnemonic[] SingleOps =
    [
        Mnemonic.Addps, Mnemonic.Addss, Mnemonic.Subps, Mnemonic.Subss, Mnemonic.Mulps, Mnemonic.Mulss, Mnemonic.Divps, Mnemonic.Divss,
        Mnemonic.Minps, Mnemonic.Minss, Mnemonic.Maxps, Mnemonic.Maxss, Mnemonic.Sqrtps, Mnemonic.Sqrtss, Mnemonic.Cmpps, Mnemonic.Cmpss,
        Mnemonic.Comiss, Mnemonic.Ucomiss,
    ];

    private static readonly Mnemonic[] DoubleOps =
    [
        Mnemonic.Addpd, Mnemonic.Addsd, Mnemonic.Subpd, Mnemonic.Subsd, Mnemonic.Mulpd, Mnemonic.Mulsd, Mnemonic.Divpd, Mnemonic.Divsd,
        Mnemonic.Minpd, Mnemonic.Minsd, Mnemonic.Maxpd, Mnemonic.Maxsd, Mnemonic.Sqrtpd, Mnemonic.Sqrtsd, Mnemonic.Cmppd, Mnemonic.Cmpsd,
        Mnemonic.Comisd, Mnemonic.Ucomisd,
    ];

    [SkippableFact]
    public void SingleArithmeticMatchesHost() => Run(61, SingleOps, SimdHarness.FloatKind.Single, 200, 5000);

    [SkippableFact]
    public void DoubleArithmeticMatchesHost() => Run(62, DoubleOps, SimdHarness.FloatKind.Double, 200, 5000);

    private static void Run(int seed, Mnemonic[] mnemonics, SimdHarness.FloatKind kind, int perForm, int minCases)
    {
        RequireNative();
        using var h = new SimdHarness(seed) { Floats = kind };
        var codes = SimdHarness.BaselineCodes(mnemonics).ToList();
        h.RunCodes(codes, perForm);
        h.AssertClean(minCases);
    }
}

/// <summary>CVT* conversions against the host, all MXCSR rounding modes, DAZ/FTZ, edge values.</summary>
[Collection("Native")]
public class SseConvertDifferentialTests
{
    private static readonly Mnemonic[] FromSingle =
    [
        Mnemonic.Cvtss2si, Mnemonic.Cvttss2si, Mnemonic.Cvtss2sd, Mnemonic.Cvtps2pd, Mnemonic.Cvtps2dq, Mnemonic.Cvttps2dq,
        Mnemonic.Cvtps2pi, Mnemonic.Cvttps2pi,
    ];

    private static readonly Mnemonic[] FromDouble =
    [
        Mnemonic.Cvtsd2si, Mnemonic.Cvttsd2si, Mnemonic.Cvtsd2ss, Mnemonic.Cvtpd2ps, Mnemonic.Cvtpd2dq, Mnemonic.Cvttpd2dq,
        Mnemonic.Cvtpd2pi, Mnemonic.Cvttpd2pi,
    ];

    private static readonly Mnemonic[] FromInt =
    [
        Mnemonic.Cvtsi2ss, Mnemonic.Cvtsi2sd, Mnemonic.Cvtdq2ps, Mnemonic.Cvtdq2pd, Mnemonic.Cvtpi2ps, Mnemonic.Cvtpi2pd,
    ];

    [SkippableFact]
    public void FromSingleMatchesHost() => Run(71, FromSingle, SimdHarness.FloatKind.Single);

    [SkippableFact]
    public void FromDoubleMatchesHost() => Run(72, FromDouble, SimdHarness.FloatKind.Double);

    [SkippableFact]
    public void FromIntegerMatchesHost() => Run(73, FromInt, SimdHarness.FloatKind.None);

    private static void Run(int seed, Mnemonic[] mnemonics, SimdHarness.FloatKind kind)
    {
        RequireNative();
        using var h = new SimdHarness(seed) { Floats = kind };
        var codes = SimdHarness.BaselineCodes(mnemonics).ToList();
        Assert.True(codes.Count >= mnemonics.Length);
        h.RunCodes(codes, 150);
        h.AssertClean(codes.Count * 150);
    }
}

/// <summary>
/// RCP/RSQRT: the host's table and ours differ in the low bits (the SDM bounds the relative error by
/// 1.5×2^-12), so finite results are compared with that bound, special cases and MXCSR exactly.
/// </summary>
[Collection("Native")]
public class SseApproxDifferentialTests
{
    [SkippableFact]
    public void ReciprocalsAreWithinTheArchitecturalBoundOfTheHost()
    {
        RequireNative();
        using var h = new SimdHarness(81) { Floats = SimdHarness.FloatKind.Single };
        var cases = 0;
        foreach (var code in new[] { Code.Rcpps_xmm_xmmm128, Code.Rsqrtps_xmm_xmmm128 })
            for (var k = 0; k < 400; k++)
            {
                h.NewState();
                var regs = h.RandomRegs();
                var bytes = h.Build(code, regs, memory: false)!;
                var d = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(bytes));
                d.Decode(out var ins);
                var src = ins.Op1Register - Register.XMM0;
                var dst = ins.Op0Register - Register.XMM0;
                var nfx = new byte[512];
                h.Native.RunSimd64(bytes, regs, 0, h.Buffer.ToArray(), h.Fx, nfx);
                for (var lane = 0; lane < 4; lane++)
                {
                    var x = BitConverter.ToUInt32(h.Fx, 160 + 16 * src + 4 * lane);
                    var host = BitConverter.ToUInt32(nfx, 160 + 16 * dst + 4 * lane);
                    var ours = Actorvisor.Kernel.Cpu.Instructions.SseApprox.Reciprocal(x, code == Code.Rsqrtps_xmm_xmmm128);
                    var hf = BitConverter.UInt32BitsToSingle(host);
                    var of = BitConverter.UInt32BitsToSingle(ours);
                    cases++;
                    if (float.IsNaN(hf) || float.IsInfinity(hf) || hf == 0 || float.IsNaN(of) || float.IsInfinity(of) || of == 0)
                        Assert.True(host == ours, $"{code} of {x:x8}: host {host:x8} ours {ours:x8}");
                    else
                        Assert.True(Math.Abs((double)hf - of) <= 1.6 * Math.Pow(2, -12) * Math.Abs(of), $"{code} of {x:x8}: host {hf} ours {of}");
                }
                Assert.Equal(BitConverter.ToUInt32(h.Fx, 24), BitConverter.ToUInt32(nfx, 24));
            }
        Assert.True(cases >= 3200);
    }
}
