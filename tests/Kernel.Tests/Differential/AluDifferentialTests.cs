using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// ADD..XOR, TEST, INC/DEC/NEG/NOT, XADD, XCHG, CMPXCHG(8B/16B) against the host: every 64-bit-mode
/// encoding, register and memory forms (and LOCKed memory forms), random and edge inputs and carry-ins.
/// Undefined flags masked out: AF for AND/OR/XOR/TEST (SDM: "AF is undefined").
/// </summary>
[Collection("Native")]
public class AluDifferentialTests
{
    private const int PerForm = 200;

    [SkippableFact]
    public void AddAdcSubSbbCmpMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(1);
        h.RunForms(Forms.CodesOf(Mnemonic.Add, Mnemonic.Adc, Mnemonic.Sub, Mnemonic.Sbb, Mnemonic.Cmp), (_, _) => AllArith, PerForm);
        h.AssertClean(5000);
    }

    [SkippableFact]
    public void LogicOpsMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(2);
        h.RunForms(Forms.CodesOf(Mnemonic.And, Mnemonic.Or, Mnemonic.Xor, Mnemonic.Test), (_, _) => AllArith & ~AF, PerForm);
        h.AssertClean(3000);
    }

    [SkippableFact]
    public void IncDecNegNotMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(3);
        // INC/DEC keep CF; NOT changes no flag: all six compared.
        h.RunForms(Forms.CodesOf(Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Not), (_, _) => AllArith, PerForm * 2);
        h.AssertClean(1000);
    }

    [SkippableFact]
    public void XaddXchgCmpxchgMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(4);
        h.RunForms(Forms.CodesOf(Mnemonic.Xadd, Mnemonic.Xchg, Mnemonic.Cmpxchg), (_, _) => AllArith, PerForm * 2,
            adjust: (f, regs) =>
            {
                // Make CMPXCHG's comparison succeed half the time: accumulator = destination.
                if (f.Code.Mnemonic() != Mnemonic.Cmpxchg || h.Rng.Next(2) == 0) return;
                if (f.HasMemory)
                    regs[0] = BitConverter.ToUInt64(h.Buffer, (int)(regs[f.MemBase] + (ulong)(long)f.Disp - NativeExecutor.BufferAddr));
                else regs[0] = regs[f.RegIndex[0]];
            });
        h.AssertClean(1000);
    }

    [SkippableFact]
    public void Cmpxchg8bAnd16bMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(5);
        foreach (var code in new[] { Code.Cmpxchg8b_m64, Code.Cmpxchg16b_m128 })
        {
            var size = code == Code.Cmpxchg8b_m64 ? 8 : 16;
            for (var v = 0; v < 6; v++)
            {
                var form = Forms.RandomForm(code, h.Rng, memory: true, lockIt: v % 2 == 1,
                    memBase: new[] { 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 }[h.Rng.Next(11)])!;
                form = new Form { Code = form.Code, RegIndex = form.RegIndex, MemBase = form.MemBase, Lock = form.Lock, Disp = size == 16 ? 16 * h.Rng.Next(-4, 4) : form.Disp };
                for (var k = 0; k < 600; k++)
                {
                    var (regs, flags) = h.Inputs(form, alignment: size);
                    var addr = regs[form.MemBase] + (ulong)(long)form.Disp;
                    var o = (int)(addr - NativeExecutor.BufferAddr);
                    if (h.Rng.Next(2) == 0)
                    {
                        // Expected value equal to memory: the exchange happens.
                        var lo = BitConverter.ToUInt64(h.Buffer, o);
                        if (size == 8) { regs[0] = (uint)lo | (regs[0] & ~0xFFFF_FFFFUL); regs[2] = (lo >> 32) | (regs[2] & ~0xFFFF_FFFFUL); }
                        else { regs[0] = lo; regs[2] = BitConverter.ToUInt64(h.Buffer, o + 8); }
                    }
                    h.Check(form.Encode(), regs, flags, AllArith);
                }
            }
        }
        h.AssertClean(2000);
    }
}
