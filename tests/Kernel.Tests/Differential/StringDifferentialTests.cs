using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// MOVS, CMPS, SCAS, LODS, STOS against the host: every element size, 64- and 32-bit address size (67h),
/// no prefix / REP(E) / REPNE, DF both ways, overlapping MOVS, REPE/REPNE stopping early, counts past the
/// chunk at which our REP yields to the run loop. RSI/RDI point into the scratch buffer; the comparison
/// covers the buffer and all registers (so RCX/RSI/RDI deltas too). CMPS/SCAS define all six flags; the
/// others change none. (INS/OUTS need ports, which a user process has not: see StringInstructionTests.)
/// </summary>
[Collection("Native")]
public class StringDifferentialTests
{
    private delegate Instruction Make(int addressSize, RepPrefixKind rep);

    private static readonly (string Name, int Size, Make Make)[] Ops =
    [
        ("movsb", 1, (a, r) => Instruction.CreateMovsb(a, Register.None, r)),
        ("movsw", 2, (a, r) => Instruction.CreateMovsw(a, Register.None, r)),
        ("movsd", 4, (a, r) => Instruction.CreateMovsd(a, Register.None, r)),
        ("movsq", 8, (a, r) => Instruction.CreateMovsq(a, Register.None, r)),
        ("cmpsb", 1, (a, r) => Instruction.CreateCmpsb(a, Register.None, r)),
        ("cmpsw", 2, (a, r) => Instruction.CreateCmpsw(a, Register.None, r)),
        ("cmpsd", 4, (a, r) => Instruction.CreateCmpsd(a, Register.None, r)),
        ("cmpsq", 8, (a, r) => Instruction.CreateCmpsq(a, Register.None, r)),
        ("scasb", 1, (a, r) => Instruction.CreateScasb(a, r)),
        ("scasw", 2, (a, r) => Instruction.CreateScasw(a, r)),
        ("scasd", 4, (a, r) => Instruction.CreateScasd(a, r)),
        ("scasq", 8, (a, r) => Instruction.CreateScasq(a, r)),
        ("lodsb", 1, (a, r) => Instruction.CreateLodsb(a, Register.None, r)),
        ("lodsw", 2, (a, r) => Instruction.CreateLodsw(a, Register.None, r)),
        ("lodsd", 4, (a, r) => Instruction.CreateLodsd(a, Register.None, r)),
        ("lodsq", 8, (a, r) => Instruction.CreateLodsq(a, Register.None, r)),
        ("stosb", 1, (a, r) => Instruction.CreateStosb(a, r)),
        ("stosw", 2, (a, r) => Instruction.CreateStosw(a, r)),
        ("stosd", 4, (a, r) => Instruction.CreateStosd(a, r)),
        ("stosq", 8, (a, r) => Instruction.CreateStosq(a, r)),
    ];

    private static void Run(DiffHarness h, int perForm, int maxCount, int minCount = 0)
    {
        foreach (var (name, size, make) in Ops)
        foreach (var addr in new[] { 64, 32 })
        foreach (var rep in new[] { RepPrefixKind.None, RepPrefixKind.Repe, RepPrefixKind.Repne })
        {
            var bytes = Forms.Encode(make(addr, rep));
            var compare = name.StartsWith("cmps") || name.StartsWith("scas");
            for (var k = 0; k < perForm; k++)
            {
                h.NewCase();
                var regs = h.RandomRegs();
                var flags = h.RandomFlags(withDf: true);
                var down = (flags & Actorvisor.Kernel.Cpu.RFlags.DF) != 0;
                var count = rep == RepPrefixKind.None ? h.Rng.Next(0, 3) : h.Rng.Next(4) == 0 ? h.Rng.Next(0, 3) : h.Rng.Next(minCount, maxCount + 1);
                var span = (ulong)((Math.Max(count, 1) + 1) * size);
                ulong Start()
                {
                    var room = (ulong)NativeExecutor.BufferSize - span - 0x200;
                    var off = 0x100 + (ulong)h.Rng.NextInt64((long)room);
                    return NativeExecutor.BufferAddr + (down ? off + span : off);
                }
                var si = Start();
                // MOVS with overlapping ranges now and then (forward copies must repeat the pattern).
                var di = name.StartsWith("movs") && h.Rng.Next(4) == 0
                    ? (ulong)((long)si + h.Rng.Next(-3 * size, 3 * size + 1))
                    : Start();
                if (di < NativeExecutor.BufferAddr + 0x80 + span || di + span + 0x80 > NativeExecutor.BufferAddr + NativeExecutor.BufferSize)
                    di = Start();
                if (compare && h.Rng.Next(2) == 0)
                {
                    // Make the sequences mostly equal so REPE runs long and REPNE stops at once, or vice versa.
                    var lo = down ? di - span : di;
                    var slo = down ? si - span : si;
                    for (ulong b = 0; b < span; b++)
                    {
                        var v = name.StartsWith("scas") ? (byte)(regs[0] >> (int)(8 * (b % (ulong)size))) : h.Buffer[(int)(slo + b - NativeExecutor.BufferAddr)];
                        if (h.Rng.Next(40) == 0) v ^= 1;
                        h.Buffer[(int)(lo + b - NativeExecutor.BufferAddr)] = v;
                    }
                }
                var upper = addr == 32 ? (ulong)h.Rng.NextInt64() << 32 : 0;
                regs[6] = si | upper;
                regs[7] = di | upper;
                regs[1] = (uint)count | (addr == 32 ? (ulong)h.Rng.NextInt64() << 32 : 0);
                h.Check(bytes, regs, flags, AllArith);
            }
        }
    }

    [SkippableFact]
    public void StringInstructionsMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(41);
        Run(h, 120, 40);
        h.AssertClean(4000);
    }

    /// <summary>REP counts beyond the 4096-iteration chunk: our CPU re-executes the instruction, the result must not show it.</summary>
    [SkippableFact]
    public void LongRepRunsMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(42);
        Run(h, 4, 1500, minCount: 1000);
        foreach (var make in new Make[] { (a, r) => Instruction.CreateMovsb(a, Register.None, r), (a, r) => Instruction.CreateStosb(a, r) })
        {
            var bytes = Forms.Encode(make(64, RepPrefixKind.Repe));
            for (var k = 0; k < 4; k++)
            {
                h.NewCase();
                var regs = h.RandomRegs();
                regs[1] = (ulong)h.Rng.Next(4097, 6000);
                regs[6] = NativeExecutor.BufferAddr + 0x100;
                regs[7] = NativeExecutor.BufferAddr + 0x2000;
                h.Check(bytes, regs, h.RandomFlags(), AllArith);
            }
        }
        h.AssertClean(100);
    }
}
