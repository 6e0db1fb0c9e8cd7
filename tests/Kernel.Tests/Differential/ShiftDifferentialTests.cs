using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// Shifts and rotates against the host, every encoding (by 1, by CL, by imm8), sizes 8..64, register and
/// memory, counts 0..255 (so masking and the mod-9/17 rotate-through-carry rule are covered).
/// Defined flags per the SDM: a masked count of 0 changes nothing (all compared); SHL/SHR/SAR define CF,
/// SF, ZF, PF (CF not for SHL/SHR counts ≥ the width), OF for a count of 1 only, never AF; rotates define
/// CF, OF for a count of 1, and leave SF, ZF, AF, PF alone; SHLD/SHRD like shifts, and for 16-bit counts
/// above 16 result and flags are undefined (those cases compare nothing but the other registers).
/// </summary>
[Collection("Native")]
public class ShiftDifferentialTests
{
    private static int MaskedCount(int count, int size) => count & (size == 8 ? 0x3F : 0x1F);

    private static ulong Defined(Mnemonic m, int size, int rawCount)
    {
        var count = MaskedCount(rawCount, size);
        if (count == 0) return AllArith;
        var of = count == 1 ? OF : 0;
        switch (m)
        {
            case Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr:
                return SF | ZF | PF | of | (count < size * 8 ? CF : 0);
            case Mnemonic.Sar:
                return SF | ZF | PF | CF | of;
            case Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr:
                return SF | ZF | AF | PF | CF | of;
            default: // SHLD, SHRD
                return size == 2 && count > 16 ? 0 : SF | ZF | PF | CF | of;
        }
    }

    private static int RandomCount(Random r) => r.Next(4) switch
    {
        0 => r.Next(0, 4),
        1 => r.Next(0, 70),
        2 => new[] { 7, 8, 9, 15, 16, 17, 18, 31, 32, 33, 63, 64, 65, 127, 128, 255 }[r.Next(16)],
        _ => r.Next(0, 256),
    };

    private static void RunShifts(DiffHarness h, IEnumerable<Code> codes, int perForm, bool includeUndefinedResults = false)
    {
        foreach (var code in codes)
        foreach (var form in Forms.FormsOf(code, h.Rng, allowLock: false))
        {
            var oc = code.ToOpCode();
            var countKind = oc.GetOpKind(oc.OpCount - 1);
            // SHLD/SHRD with CL need the count in CL: keep RCX out of the other operands.
            if (countKind == OpCodeOperandKind.cl && form.RegIndex.Contains(1)) continue;
            for (var k = 0; k < perForm; k++)
            {
                var (regs, flags) = h.Inputs(form);
                var count = RandomCount(h.Rng);
                long imm = 0;
                if (countKind == OpCodeOperandKind.cl) regs[1] = (regs[1] & ~0xFFUL) | (uint)count;
                else if (countKind == OpCodeOperandKind.imm8_const_1) count = 1;
                else imm = count;
                var size = form.Size;
                var defined = Defined(code.Mnemonic(), size, count);
                var bytes = form.Encode(imm);
                // An undefined result (16-bit SHLD/SHRD by 17..31) is compared only against the AMD host.
                if (defined == 0 && !includeUndefinedResults) continue;
                h.Check(bytes, regs, flags, defined);
            }
        }
    }

    [SkippableFact]
    public void ShlShrSarMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(11);
        RunShifts(h, Forms.CodesOf(Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar), 300);
        h.AssertClean(5000);
    }

    [SkippableFact]
    public void RotatesMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(12);
        RunShifts(h, Forms.CodesOf(Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr), 300);
        h.AssertClean(5000);
    }

    [SkippableFact]
    public void DoubleShiftsMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(13);
        RunShifts(h, Forms.CodesOf(Mnemonic.Shld, Mnemonic.Shrd), 400);
        h.AssertClean(2000);
    }

    /// <summary>
    /// Our choices for what the SDM leaves undefined (AF after shifts, OF for counts above 1, CF of 8/16-bit
    /// shifts by the width or more, SHLD/SHRD of 16-bit operands by 17..31) are AMD Zen's: all flags and
    /// results compared, on an AMD host only.
    /// </summary>
    [SkippableFact]
    public void UndefinedFlagsAndResultsMatchAmdHost()
    {
        RequireAmdHost();
        using var h = new DiffHarness(14) { StrictUndefined = true };
        RunShifts(h, Forms.CodesOf(Mnemonic.Shl, Mnemonic.Shr, Mnemonic.Sar, Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr), 24);
        RunShifts(h, Forms.CodesOf(Mnemonic.Shld, Mnemonic.Shrd), 96, includeUndefinedResults: true);
        h.AssertClean(3000);
    }
}
