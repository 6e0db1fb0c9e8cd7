using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>MMX and SSE2 packed-integer, logic, shuffle, unpack and pack instructions against the host.</summary>
[Collection("Native")]
public class SseIntegerDifferentialTests
{
    public static readonly Mnemonic[] Arithmetic =
    [
        Mnemonic.Paddb, Mnemonic.Paddw, Mnemonic.Paddd, Mnemonic.Paddq, Mnemonic.Psubb, Mnemonic.Psubw, Mnemonic.Psubd, Mnemonic.Psubq,
        Mnemonic.Paddsb, Mnemonic.Paddsw, Mnemonic.Paddusb, Mnemonic.Paddusw, Mnemonic.Psubsb, Mnemonic.Psubsw, Mnemonic.Psubusb, Mnemonic.Psubusw,
        Mnemonic.Pmullw, Mnemonic.Pmulhw, Mnemonic.Pmulhuw, Mnemonic.Pmuludq, Mnemonic.Pmaddwd, Mnemonic.Pavgb, Mnemonic.Pavgw, Mnemonic.Psadbw,
        Mnemonic.Pminub, Mnemonic.Pmaxub, Mnemonic.Pminsw, Mnemonic.Pmaxsw,
    ];

    public static readonly Mnemonic[] LogicCompare =
    [
        Mnemonic.Pand, Mnemonic.Pandn, Mnemonic.Por, Mnemonic.Pxor, Mnemonic.Andps, Mnemonic.Andpd, Mnemonic.Andnps, Mnemonic.Andnpd,
        Mnemonic.Orps, Mnemonic.Orpd, Mnemonic.Xorps, Mnemonic.Xorpd,
        Mnemonic.Pcmpeqb, Mnemonic.Pcmpeqw, Mnemonic.Pcmpeqd, Mnemonic.Pcmpgtb, Mnemonic.Pcmpgtw, Mnemonic.Pcmpgtd,
    ];

    public static readonly Mnemonic[] Shifts =
    [
        Mnemonic.Psllw, Mnemonic.Pslld, Mnemonic.Psllq, Mnemonic.Psrlw, Mnemonic.Psrld, Mnemonic.Psrlq, Mnemonic.Psraw, Mnemonic.Psrad,
        Mnemonic.Pslldq, Mnemonic.Psrldq,
    ];

    public static readonly Mnemonic[] Shuffles =
    [
        Mnemonic.Pshufd, Mnemonic.Pshuflw, Mnemonic.Pshufhw, Mnemonic.Pshufw, Mnemonic.Shufps, Mnemonic.Shufpd,
        Mnemonic.Punpcklbw, Mnemonic.Punpcklwd, Mnemonic.Punpckldq, Mnemonic.Punpcklqdq,
        Mnemonic.Punpckhbw, Mnemonic.Punpckhwd, Mnemonic.Punpckhdq, Mnemonic.Punpckhqdq,
        Mnemonic.Unpcklps, Mnemonic.Unpckhps, Mnemonic.Unpcklpd, Mnemonic.Unpckhpd,
        Mnemonic.Packsswb, Mnemonic.Packssdw, Mnemonic.Packuswb, Mnemonic.Pextrw, Mnemonic.Pinsrw,
    ];

    [SkippableFact]
    public void ArithmeticMatchesHost() => Run(31, Arithmetic, 40, 1500);

    [SkippableFact]
    public void LogicAndCompareMatchHost() => Run(32, LogicCompare, 30, 700);

    [SkippableFact]
    public void ShiftsMatchHost() => Run(33, Shifts, 60, 900);

    [SkippableFact]
    public void ShufflesUnpacksPacksMatchHost() => Run(34, Shuffles, 40, 1200);

    private static void Run(int seed, Mnemonic[] mnemonics, int perForm, int minCases)
    {
        RequireNative();
        using var h = new SimdHarness(seed);
        var codes = SimdHarness.BaselineCodes(mnemonics).ToList();
        Assert.NotEmpty(codes);
        h.RunCodes(codes, perForm);
        h.AssertClean(minCases);
    }
}
