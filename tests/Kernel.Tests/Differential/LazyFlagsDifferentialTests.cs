using Iced.Intel;
using static Actorvisor.Kernel.Tests.Differential.DiffHarness;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// The lazy flags seen through their consumers: a flag-producing instruction followed by one that reads
/// the flags (SETcc and CMOVcc for every condition, which take <c>Condition</c>'s fast paths after CMP/SUB
/// and logic ops; ADC, SBB, RCL and INC, which take the carry through <c>GetCF</c>), run as a two-instruction
/// sequence on the host and on our CPU. Producer flags the SDM leaves undefined are only compared on an
/// AMD host (whose choices we follow); elsewhere a case whose consumer reads one is skipped.
/// </summary>
[Collection("Native")]
public class LazyFlagsDifferentialTests
{
    private static readonly Mnemonic[] FullyDefined =
    [
        Mnemonic.Add, Mnemonic.Adc, Mnemonic.Sub, Mnemonic.Sbb, Mnemonic.Cmp, Mnemonic.And, Mnemonic.Or, Mnemonic.Xor,
        Mnemonic.Test, Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Xadd, Mnemonic.Cmpxchg,
    ];

    private static readonly Mnemonic[] PartlyDefined =
    [
        Mnemonic.Shl, Mnemonic.Shr, Mnemonic.Sar, Mnemonic.Rol, Mnemonic.Rcr, Mnemonic.Shld, Mnemonic.Bt, Mnemonic.Bts,
        Mnemonic.Bsf, Mnemonic.Bsr, Mnemonic.Mul, Mnemonic.Imul,
    ];

    private static readonly Mnemonic[] Consumers =
    [
        Mnemonic.Seto, Mnemonic.Setno, Mnemonic.Setb, Mnemonic.Setae, Mnemonic.Sete, Mnemonic.Setne, Mnemonic.Setbe, Mnemonic.Seta,
        Mnemonic.Sets, Mnemonic.Setns, Mnemonic.Setp, Mnemonic.Setnp, Mnemonic.Setl, Mnemonic.Setge, Mnemonic.Setle, Mnemonic.Setg,
        Mnemonic.Cmovb, Mnemonic.Cmove, Mnemonic.Cmovbe, Mnemonic.Cmovl, Mnemonic.Cmovle, Mnemonic.Cmovo, Mnemonic.Cmovp, Mnemonic.Cmovs,
        Mnemonic.Adc, Mnemonic.Sbb, Mnemonic.Rcl, Mnemonic.Inc,
    ];

    /// <summary>The flags a consumer reads.</summary>
    private static ulong Reads(Mnemonic m) => m switch
    {
        Mnemonic.Seto or Mnemonic.Setno or Mnemonic.Cmovo => OF,
        Mnemonic.Setb or Mnemonic.Setae or Mnemonic.Adc or Mnemonic.Sbb or Mnemonic.Rcl or Mnemonic.Cmovb => CF,
        Mnemonic.Sete or Mnemonic.Setne or Mnemonic.Cmove => ZF,
        Mnemonic.Setbe or Mnemonic.Seta or Mnemonic.Cmovbe => CF | ZF,
        Mnemonic.Sets or Mnemonic.Setns or Mnemonic.Cmovs => SF,
        Mnemonic.Setp or Mnemonic.Setnp or Mnemonic.Cmovp => PF,
        Mnemonic.Setl or Mnemonic.Setge or Mnemonic.Cmovl => SF | OF,
        Mnemonic.Setle or Mnemonic.Setg or Mnemonic.Cmovle => ZF | SF | OF,
        _ => 0, // INC reads none (it keeps CF, which the final flags show)
    };

    /// <summary>The producer flags the SDM defines (conservatively: as for a count above 1 for shifts).</summary>
    private static ulong Defined(Mnemonic m) => m switch
    {
        Mnemonic.And or Mnemonic.Or or Mnemonic.Xor or Mnemonic.Test => AllArith & ~AF,
        Mnemonic.Shl or Mnemonic.Shr or Mnemonic.Sar or Mnemonic.Shld => CF | SF | ZF | PF,
        Mnemonic.Rol or Mnemonic.Rcr => CF | SF | ZF | AF | PF,
        Mnemonic.Bt or Mnemonic.Bts => CF | ZF,
        Mnemonic.Bsf or Mnemonic.Bsr => ZF,
        Mnemonic.Mul or Mnemonic.Imul => CF | OF,
        _ => AllArith,
    };

    private static void Run(DiffHarness h, Mnemonic[] producers, int cases, bool strict)
    {
        var producerCodes = Forms.CodesOf(producers).Where(c => c.ToOpCode().OpCount > 0).ToArray();
        var consumerCodes = Forms.CodesOf(Consumers).ToArray();
        var ran = 0;
        for (var k = 0; k < cases; k++)
        {
            var pc = producerCodes[h.Rng.Next(producerCodes.Length)];
            var cc = consumerCodes[h.Rng.Next(consumerCodes.Length)];
            var producer = Forms.RandomForm(pc, h.Rng, memory: false, lockIt: false);
            var consumer = Forms.RandomForm(cc, h.Rng, memory: false, lockIt: false);
            if (producer is null || consumer is null) continue;
            var defined = Defined(pc.Mnemonic());
            var consumerReads = Reads(cc.Mnemonic());
            // Flags the consumer reads must be defined; the final flags compared are the producer's defined
            // ones where the consumer leaves flags alone, else the consumer's own (all of them).
            if (!strict && (consumerReads & ~defined) != 0) continue;
            var consumerWritesFlags = cc.Mnemonic() is Mnemonic.Adc or Mnemonic.Sbb or Mnemonic.Inc or Mnemonic.Rcl;
            var finalDefined = consumerWritesFlags
                ? (cc.Mnemonic() == Mnemonic.Rcl ? defined & ~(CF | OF) | CF : cc.Mnemonic() == Mnemonic.Inc ? AllArith & ~CF | (defined & CF) : AllArith)
                : defined;
            var (regs, flags) = h.Inputs(producer);
            // Equal operands now and then, so that ZF-dependent conditions see both outcomes often.
            if (h.Rng.Next(4) == 0 && producer.RegIndex.Length > 1 && producer.RegIndex[0] >= 0 && producer.RegIndex[1] >= 0)
                regs[producer.RegIndex[1]] = regs[producer.RegIndex[0]];
            var immKind = ImmediateKind(pc);
            var code = producer.Encode(immKind == OpCodeOperandKind.None ? 0 : h.Immediate(immKind));
            var next = consumer.Encode(ImmediateKind(cc) == OpCodeOperandKind.None ? 0 : h.Immediate(ImmediateKind(cc)),
                NativeExecutor.TestAddr + (ulong)code.Length);
            h.Check([.. code, .. next], regs, flags, strict ? AllArith : finalDefined);
            ran++;
        }
        Assert.True(ran > cases / 3, $"only {ran} sequences ran");
    }

    [SkippableFact]
    public void FlagConsumersAfterEveryProducerMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(61);
        Run(h, FullyDefined, 30_000, strict: false);
        Run(h, PartlyDefined, 20_000, strict: false);
        h.AssertClean(10_000);
    }

    [SkippableFact]
    public void FlagConsumersAfterUndefinedFlagsMatchAmdHost()
    {
        RequireAmdHost();
        using var h = new DiffHarness(62) { StrictUndefined = true };
        Run(h, PartlyDefined, 20_000, strict: true);
        h.AssertClean(5_000);
    }
    private static readonly Code[] Branches = Enum.GetValues<Code>()
        .Where(c => c != Code.INVALID && c.ToOpCode().Encoding == EncodingKind.Legacy && c.ToOpCode().Mode64 &&
                    c.ToOpCode().OpCount == 1 && c.ToOpCode().GetOpKind(0) is OpCodeOperandKind.br64_1 or OpCodeOperandKind.br64_4 &&
                    c.ConditionCode() != ConditionCode.None && c.Mnemonic().ToString().StartsWith('J'))
        .ToArray();

    /// <summary>
    /// Jcc (rel8 and rel32, every condition) after a producer, branching over a NOT RAX: whether RAX is
    /// inverted shows which way it went, on the host and on our CPU (whose Jcc handlers are per condition).
    /// </summary>
    [SkippableFact]
    public void ConditionalBranchesAfterEveryProducerMatchHost()
    {
        RequireNative();
        using var h = new DiffHarness(63);
        Assert.Equal(32, Branches.Length);
        var producerCodes = Forms.CodesOf(FullyDefined).Concat(Forms.CodesOf(PartlyDefined)).Where(c => c.ToOpCode().OpCount > 0).ToArray();
        var notRax = Forms.Encode(Instruction.Create(Code.Not_rm64, Register.RAX), 0);
        var ran = 0;
        for (var k = 0; k < 20_000; k++)
        {
            var pc = producerCodes[h.Rng.Next(producerCodes.Length)];
            var bc = Branches[h.Rng.Next(Branches.Length)];
            var producer = Forms.RandomForm(pc, h.Rng, memory: false, lockIt: false);
            if (producer is null) continue;
            var defined = Defined(pc.Mnemonic());
            if ((BranchReads(bc.ConditionCode()) & ~defined) != 0) continue;
            var (regs, flags) = h.Inputs(producer);
            if (h.Rng.Next(4) == 0 && producer.RegIndex.Length > 1 && producer.RegIndex[0] >= 0 && producer.RegIndex[1] >= 0)
                regs[producer.RegIndex[1]] = regs[producer.RegIndex[0]];
            var immKind = ImmediateKind(pc);
            var code = producer.Encode(immKind == OpCodeOperandKind.None ? 0 : h.Immediate(immKind));
            var at = NativeExecutor.TestAddr + (ulong)code.Length;
            var length = bc.ToOpCode().GetOpKind(0) == OpCodeOperandKind.br64_1 ? 2UL : 6UL;
            var branch = Forms.Encode(Instruction.CreateBranch(bc, at + length + (ulong)notRax.Length), at);
            Assert.Equal((int)length, branch.Length);
            h.Check([.. code, .. branch, .. notRax], regs, flags, defined);
            ran++;
        }
        Assert.True(ran > 5_000, $"only {ran} sequences ran");
        h.AssertClean(5_000);
    }

    private static ulong BranchReads(ConditionCode cc) => cc switch
    {
        ConditionCode.o or ConditionCode.no => OF,
        ConditionCode.b or ConditionCode.ae => CF,
        ConditionCode.e or ConditionCode.ne => ZF,
        ConditionCode.be or ConditionCode.a => CF | ZF,
        ConditionCode.s or ConditionCode.ns => SF,
        ConditionCode.p or ConditionCode.np => PF,
        ConditionCode.l or ConditionCode.ge => SF | OF,
        _ => ZF | SF | OF,
    };
}
