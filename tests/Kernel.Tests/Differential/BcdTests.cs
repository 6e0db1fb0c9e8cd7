using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// DAA, DAS, AAA, AAS, AAM, AAD (not valid in 64-bit mode).
/// 1. Exhaustively (every AL, CF and AF, several AH and imm8) in real and 32-bit protected mode against a
///    reference written here from the SDM's Operation pseudo-code (Vol. 2A), comparing AX and the flags
///    the SDM defines: DAA/DAS CF, AF, SF, ZF, PF (OF undefined); AAA/AAS AF, CF (OF, SF, ZF, PF
///    undefined); AAM/AAD SF, ZF, PF (OF, AF, CF undefined).
/// 2. The same inputs natively, in a 32-bit compatibility-mode code segment (selector 0x23) of this 64-bit
///    process, where the host allows it.
/// </summary>
[Collection("Native")]
public class BcdTests
{
    private const ulong DaaDefined = CF | AF | SF | ZF | PF, AsciiDefined = CF | AF, MulDivDefined = SF | ZF | PF;

    /// <summary>One input: instruction bytes, AX and the arithmetic flags.</summary>
    private readonly record struct Input(byte[] Code, ushort Ax, ulong Flags, ulong Defined);

    private static IEnumerable<Input> Inputs()
    {
        var rng = new Random(51);
        ulong[] flagCombos = [0, CF, AF, CF | AF];
        foreach (var (code, defined, ahs) in new (byte[], ulong, int[])[]
                 {
                     ([0x27], DaaDefined, [0x5A]), ([0x2F], DaaDefined, [0xA5]),
                     ([0x37], AsciiDefined, [0, 0x12, 0xFF]), ([0x3F], AsciiDefined, [0, 0x12, 0xFF]),
                 })
            for (var al = 0; al < 256; al++)
            foreach (var ah in ahs)
            foreach (var f in flagCombos)
                yield return new Input(code, (ushort)(ah << 8 | al), f | RandomOther(rng), defined);
        foreach (var imm in new byte[] { 10, 1, 7, 16, 255 })
            for (var al = 0; al < 256; al++)
                yield return new Input([0xD4, imm], (ushort)(0x3300 | al), RandomOther(rng) | (uint)rng.Next(2), MulDivDefined);
        foreach (var imm in new byte[] { 10, 0, 7, 255 })
            for (var al = 0; al < 256; al++)
            foreach (var ah in new[] { 0, 1, 9, 0xFF, rng.Next(256) })
                yield return new Input([0xD5, imm], (ushort)(ah << 8 | al), RandomOther(rng), MulDivDefined);
    }

    /// <summary>Random values for the flags an instruction does not take as input (they must not matter).</summary>
    private static ulong RandomOther(Random r) => (ulong)r.Next(0x1000) & (OF | SF | ZF | PF);

    /// <summary>The SDM Operation sections, transcribed: returns the new AX and flags (defined ones only meaningful).</summary>
    private static (ushort Ax, ulong Flags) Reference(byte[] code, ushort ax, ulong flags)
    {
        int al = ax & 0xFF, ah = ax >> 8;
        bool cf = (flags & CF) != 0, af = (flags & AF) != 0;
        ulong Szp(int v) => ((v & 0xFF) == 0 ? ZF : 0) | ((v & 0x80) != 0 ? SF : 0) |
                             (System.Numerics.BitOperations.PopCount((uint)(v & 0xFF)) % 2 == 0 ? PF : 0);
        switch (code[0])
        {
            case 0x27: // DAA
            {
                int oldAl = al; var oldCf = cf;
                cf = false;
                if ((al & 0x0F) > 9 || af) { cf = oldCf || al + 6 > 0xFF; al = (al + 6) & 0xFF; af = true; }
                else af = false;
                if (oldAl > 0x99 || oldCf) { al = (al + 0x60) & 0xFF; cf = true; }
                else cf = false;
                return ((ushort)(ah << 8 | al), Szp(al) | (cf ? CF : 0) | (af ? AF : 0));
            }
            case 0x2F: // DAS
            {
                int oldAl = al; var oldCf = cf;
                cf = false;
                if ((al & 0x0F) > 9 || af) { cf = oldCf || al < 6; al = (al - 6) & 0xFF; af = true; }
                else af = false;
                if (oldAl > 0x99 || oldCf) { al = (al - 0x60) & 0xFF; cf = true; }
                return ((ushort)(ah << 8 | al), Szp(al) | (cf ? CF : 0) | (af ? AF : 0));
            }
            case 0x37: // AAA
            {
                var v = (int)ax;
                if ((al & 0x0F) > 9 || af) { v += 0x106; af = cf = true; }
                else af = cf = false;
                v &= 0xFF0F;
                return ((ushort)v, (cf ? CF : 0) | (af ? AF : 0));
            }
            case 0x3F: // AAS
            {
                var v = (int)ax;
                if ((al & 0x0F) > 9 || af) { v -= 6; v = (v & 0xFF) | ((((v >> 8) - 1) & 0xFF) << 8); af = cf = true; }
                else af = cf = false;
                v &= 0xFF0F;
                return ((ushort)v, (cf ? CF : 0) | (af ? AF : 0));
            }
            case 0xD4: // AAM imm8
            {
                int b = code[1];
                var nal = al % b;
                return ((ushort)((al / b) << 8 | nal), Szp(nal));
            }
            default: // AAD imm8
            {
                var nal = (al + ah * code[1]) & 0xFF;
                return ((ushort)nal, Szp(nal));
            }
        }
    }

    [Theory]
    [InlineData(StartMode.Real)]
    [InlineData(StartMode.Protected32)]
    public void MatchSdmPseudoCodeExhaustively(StartMode mode)
    {
        using var emu = new EmulatedExecutor(mode);
        var rng = new Random(52);
        var failures = new List<string>();
        var n = 0;
        foreach (var input in Inputs())
        {
            var regs = new ulong[16];
            for (var r = 0; r < 16; r++) regs[r] = (ulong)rng.NextInt64() & 0xFFFF_FFFF;
            regs[0] = (regs[0] & ~0xFFFFUL) | input.Ax;
            var e = emu.Run(input.Code, regs, input.Flags, default);
            n++;
            Assert.Null(e.Fault);
            var (ax, flags) = Reference(input.Code, input.Ax, input.Flags);
            if ((ushort)e.Regs[0] != ax || ((e.Flags ^ flags) & input.Defined) != 0 || (e.Regs[0] >> 16) != (regs[0] >> 16))
                failures.Add($"{Convert.ToHexString(input.Code)} ax={input.Ax:x4} in {FlagText(input.Flags)}: " +
                             $"ours ax={(ushort)e.Regs[0]:x4} {FlagText(e.Flags)}, SDM ax={ax:x4} {FlagText(flags)}");
        }
        Assert.True(n > 14000, $"{n} inputs");
        Assert.True(failures.Count == 0, $"{failures.Count} differences:\n" + string.Join("\n", failures.GroupBy(f => f[..2]).SelectMany(g => g.Take(5))));
    }

    [Fact]
    public void AamByZeroRaisesDivideError()
    {
        using var emu = new EmulatedExecutor(StartMode.Protected32);
        var regs = new ulong[16];
        regs[0] = 0x1234;
        var e = emu.Run([0xD4, 0x00], regs, 0, default);
        Assert.Equal(Vectors.DE, e.Fault?.Vector);
        Assert.Equal(0x1234UL, e.Regs[0]);
    }

    [Theory]
    [InlineData(new byte[] { 0x27 })]
    [InlineData(new byte[] { 0x2F })]
    [InlineData(new byte[] { 0x37 })]
    [InlineData(new byte[] { 0x3F })]
    [InlineData(new byte[] { 0xD4, 0x0A })]
    [InlineData(new byte[] { 0xD5, 0x0A })]
    public void InvalidIn64BitMode(byte[] code)
    {
        using var emu = new EmulatedExecutor(StartMode.Long64);
        var e = emu.Run(code, new ulong[16], 0, default);
        Assert.Equal(Vectors.UD, e.Fault?.Vector);
    }

    private static void CompareWithHost(bool strict)
    {
        var native = NativeExecutor.Instance!;
        Skip.If(native.CompatUnavailableReason is not null, native.CompatUnavailableReason);
        using var emu = new EmulatedExecutor(StartMode.Protected32);
        var rng = new Random(53);
        var failures = new List<string>();
        var n = 0;
        foreach (var input in Inputs())
        {
            if (input.Code[0] == 0xD4 && input.Code[1] == 0) continue; // #DE: never natively
            var regs = new ulong[16];
            for (var r = 0; r < 16; r++) regs[r] = (ulong)rng.NextInt64() & 0xFFFF_FFFF;
            regs[0] = (regs[0] & ~0xFFFFUL) | input.Ax;
            var h = native.RunCompat32(input.Code, regs, input.Flags);
            var e = emu.Run(input.Code, regs, input.Flags, default);
            n++;
            var mask = strict ? AllArith : input.Defined;
            if ((ushort)e.Regs[0] != (ushort)h.Regs[0] || ((e.Flags ^ h.Flags) & mask) != 0)
                failures.Add($"{Convert.ToHexString(input.Code)} ax={input.Ax:x4} in {FlagText(input.Flags)}: " +
                             $"ours ax={(ushort)e.Regs[0]:x4} {FlagText(e.Flags)}, host ax={(ushort)h.Regs[0]:x4} {FlagText(h.Flags)}");
        }
        Assert.True(n > 14000, $"{n} inputs");
        Assert.True(failures.Count == 0, $"{failures.Count} of {n} differ:\n" + string.Join("\n", failures.GroupBy(f => f[..2]).SelectMany(g => g.Take(5))));
    }

    [SkippableFact]
    public void MatchHostInCompatibilityMode()
    {
        RequireNative();
        CompareWithHost(strict: false);
    }

    /// <summary>The flags the SDM leaves undefined, as AMD produces them.</summary>
    [SkippableFact]
    public void UndefinedFlagsMatchAmdHostInCompatibilityMode()
    {
        RequireAmdHost();
        CompareWithHost(strict: true);
    }
}
