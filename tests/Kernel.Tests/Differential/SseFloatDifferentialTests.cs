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
