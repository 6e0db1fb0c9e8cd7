using System.Numerics;
using Actorvisor.Kernel.Cpu;
using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// MUL, IMUL (one, two and three operands), DIV, IDIV against the host, all sizes, register and memory.
/// Defined flags: CF and OF for MUL/IMUL (SF, ZF, AF, PF undefined); none for DIV/IDIV.
/// A dividing case that must raise #DE (divisor 0 or a quotient that does not fit, decided here with
/// BigInteger arithmetic from the SDM's definition) never runs natively: the host's SIGFPE cannot be
/// caught in .NET. Our CPU must raise #DE for it and leave every register unchanged.
/// </summary>
[Collection("Native")]
public class MulDivDifferentialTests
{
    [SkippableFact]
    public void MulImulMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(21);
        h.RunForms(Forms.CodesOf(Mnemonic.Mul, Mnemonic.Imul), (_, _) => CF | OF, 300);
        h.AssertClean(4000);
    }

    [SkippableFact]
    public void MulImulUndefinedFlagsMatchAmdHost()
    {
        RequireAmdHost();
        using var h = new DiffHarness(22) { StrictUndefined = true };
        h.RunForms(Forms.CodesOf(Mnemonic.Mul, Mnemonic.Imul), (_, _) => AllArith, 32);
        h.AssertClean(1000);
    }

    [SkippableFact]
    public void DivIdivMatchHostAndFaultPerSdm()
    {
        RequireNative();
        using var h = new DiffHarness(23);
        RunDivisions(h, 400);
    }

    /// <summary>DIV/IDIV leave all six (undefined) flags as they were, as AMD does.</summary>
    [SkippableFact]
    public void DivIdivUndefinedFlagsMatchAmdHost()
    {
        RequireAmdHost();
        using var h = new DiffHarness(24) { StrictUndefined = true };
        RunDivisions(h, 40);
    }

    private static void RunDivisions(DiffHarness h, int perForm)
    {
        var faults = 0;
        foreach (var code in Forms.CodesOf(Mnemonic.Div, Mnemonic.Idiv))
        foreach (var form in Forms.FormsOf(code, h.Rng, allowLock: false, registerVariants: 3))
        {
            var signed = code.Mnemonic() == Mnemonic.Idiv;
            var size = form.Size;
            var bits = size * 8;
            var mask = size == 8 ? ulong.MaxValue : (1UL << bits) - 1;
            for (var k = 0; k < perForm; k++)
            {
                var (regs, flags) = h.Inputs(form);
                var divisor = h.Value() & mask;
                if (h.Rng.Next(20) == 0) divisor = 0;
                // Dividend: half the time a sign- or zero-extended value (quotient usually fits), else random.
                var low = h.Value();
                ulong high = h.Rng.Next(2) == 0
                    ? (signed && (low & (1UL << (bits - 1))) != 0 ? ulong.MaxValue : 0)
                    : h.Value();
                if (!signed && h.Rng.Next(2) == 0 && divisor != 0) high = (h.Value() & mask) % divisor;
                if (size == 1)
                    regs[0] = (regs[0] & ~0xFFFFUL) | (low & 0xFF) | ((high & 0xFF) << 8);
                else
                {
                    regs[0] = size == 2 ? (regs[0] & ~0xFFFFUL) | (low & 0xFFFF) : size == 4 ? low & 0xFFFF_FFFF | (regs[0] & ~0xFFFF_FFFFUL) : low;
                    regs[2] = size == 2 ? (regs[2] & ~0xFFFFUL) | (high & 0xFFFF) : size == 4 ? high & 0xFFFF_FFFF | (regs[2] & ~0xFFFF_FFFFUL) : high;
                }
                // Place the divisor in its operand (a register operand may be AH/AL/AX/DX themselves).
                if (form.HasMemory) h.Poke(regs[form.MemBase] + (ulong)(long)form.Disp, divisor, size);
                else SetOperand(regs, form, divisor, size);
                var bytes = form.Encode();

                if (WouldFault(regs, form, h.Buffer, size, signed))
                {
                    faults++;
                    var e = h.Emu.Run(bytes, regs, flags, h.Buffer.ToArray());
                    Assert.True(e.Fault is { Vector: Vectors.DE }, $"{form}: expected #DE, got {e.Fault?.Message ?? "no fault"}");
                    for (var r = 0; r < 16; r++)
                        if (r != Gpr.RSP) Assert.Equal(regs[r], e.Regs[r]);
                    continue;
                }
                h.Check(bytes, regs, flags, 0);
            }
        }
        Assert.True(faults > perForm / 2, $"only {faults} faulting cases");
        h.AssertClean(perForm * 20);
    }

    private static void SetOperand(ulong[] regs, Form form, ulong value, int size)
    {
        var idx = form.RegIndex[0];
        if (size == 1 && form.HighByte && idx < 4) regs[idx] = (regs[idx] & ~0xFF00UL) | ((value & 0xFF) << 8);
        else if (size == 1) regs[idx] = (regs[idx] & ~0xFFUL) | (value & 0xFF);
        else if (size == 2) regs[idx] = (regs[idx] & ~0xFFFFUL) | (value & 0xFFFF);
        else if (size == 4) regs[idx] = (regs[idx] & ~0xFFFF_FFFFUL) | (value & 0xFFFF_FFFF);
        else regs[idx] = value;
    }

    /// <summary>SDM DIV/IDIV: #DE if the divisor is 0 or the quotient does not fit the destination.</summary>
    private static bool WouldFault(ulong[] regs, Form form, byte[] buffer, int size, bool signed)
    {
        var bits = size * 8;
        var mask = size == 8 ? ulong.MaxValue : (1UL << bits) - 1;
        ulong divisor;
        if (form.HasMemory)
        {
            var o = (int)(regs[form.MemBase] + (ulong)(long)form.Disp - NativeExecutor.BufferAddr);
            divisor = BitConverter.ToUInt64(buffer, o) & mask;
        }
        else
        {
            var idx = form.RegIndex[0];
            divisor = (size == 1 && form.HighByte && idx < 4 ? regs[idx] >> 8 : regs[idx]) & mask;
        }
        if (divisor == 0) return true;
        BigInteger dividend = size == 1
            ? regs[0] & 0xFFFF
            : ((BigInteger)(regs[2] & mask) << bits) | (regs[0] & mask);
        if (!signed) return dividend / divisor > mask;
        var sd = dividend >= BigInteger.One << (2 * bits - 1) ? dividend - (BigInteger.One << (2 * bits)) : dividend;
        var sv = divisor >= 1UL << (bits - 1) ? (BigInteger)divisor - (BigInteger.One << bits) : divisor;
        var q = BigInteger.Divide(sd, sv);
        return q > (BigInteger.One << (bits - 1)) - 1 || q < -(BigInteger.One << (bits - 1));
    }
}
