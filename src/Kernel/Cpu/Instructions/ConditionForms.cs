using System.Runtime.CompilerServices;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Jcc, SETcc and CMOVcc with their condition fixed when the block is built: one handler per condition
/// code (a generic instantiation per <see cref="ICondition"/>), in which <c>ConditionInline</c> folds to that
/// condition's test instead of switching on the code at every execution. Each does what the general
/// <c>Control.Jcc</c>, <c>BitOps.Setcc</c> and <c>BitOps.Cmovcc</c> do.
/// </summary>
internal static unsafe class ConditionForms
{
    internal interface ICondition { static abstract ConditionCode Code { get; } }
    private struct O : ICondition { public static ConditionCode Code => ConditionCode.o; }
    private struct No : ICondition { public static ConditionCode Code => ConditionCode.no; }
    private struct B : ICondition { public static ConditionCode Code => ConditionCode.b; }
    private struct Ae : ICondition { public static ConditionCode Code => ConditionCode.ae; }
    private struct E : ICondition { public static ConditionCode Code => ConditionCode.e; }
    private struct Ne : ICondition { public static ConditionCode Code => ConditionCode.ne; }
    private struct Be : ICondition { public static ConditionCode Code => ConditionCode.be; }
    private struct A : ICondition { public static ConditionCode Code => ConditionCode.a; }
    private struct S : ICondition { public static ConditionCode Code => ConditionCode.s; }
    private struct Ns : ICondition { public static ConditionCode Code => ConditionCode.ns; }
    private struct P : ICondition { public static ConditionCode Code => ConditionCode.p; }
    private struct Np : ICondition { public static ConditionCode Code => ConditionCode.np; }
    private struct L : ICondition { public static ConditionCode Code => ConditionCode.l; }
    private struct Ge : ICondition { public static ConditionCode Code => ConditionCode.ge; }
    private struct Le : ICondition { public static ConditionCode Code => ConditionCode.le; }
    private struct G : ICondition { public static ConditionCode Code => ConditionCode.g; }

    private enum Kind { Jcc, Jcc64, Setcc, Cmov64, Cmov32 }

    /// <summary>The handler for this instruction's condition, or <paramref name="general"/>.</summary>
    public static delegate*<SoftwareCpu, in Instruction, void> Select(in Instruction i, delegate*<SoftwareCpu, in Instruction, void> general)
    {
        Kind kind;
        if (i.IsJccShortOrNear) kind = i.Op0Kind == OpKind.NearBranch64 ? Kind.Jcc64 : Kind.Jcc;
        else if (IsSetcc(i.Mnemonic)) kind = Kind.Setcc;
        else if (IsCmovcc(i.Mnemonic))
        {
            var d = i.Op0Register;
            if (d >= Register.RAX && d <= Register.R15) kind = Kind.Cmov64;
            else if (d >= Register.EAX && d <= Register.R15D) kind = Kind.Cmov32;
            else return general;
        }
        else return general;
        return i.ConditionCode switch
        {
            ConditionCode.o => For<O>(kind),
            ConditionCode.no => For<No>(kind),
            ConditionCode.b => For<B>(kind),
            ConditionCode.ae => For<Ae>(kind),
            ConditionCode.e => For<E>(kind),
            ConditionCode.ne => For<Ne>(kind),
            ConditionCode.be => For<Be>(kind),
            ConditionCode.a => For<A>(kind),
            ConditionCode.s => For<S>(kind),
            ConditionCode.ns => For<Ns>(kind),
            ConditionCode.p => For<P>(kind),
            ConditionCode.np => For<Np>(kind),
            ConditionCode.l => For<L>(kind),
            ConditionCode.ge => For<Ge>(kind),
            ConditionCode.le => For<Le>(kind),
            ConditionCode.g => For<G>(kind),
            _ => general,
        };
    }

    internal static bool IsSetcc(Mnemonic m) => m is Mnemonic.Seto or Mnemonic.Setno or Mnemonic.Setb or Mnemonic.Setae or
        Mnemonic.Sete or Mnemonic.Setne or Mnemonic.Setbe or Mnemonic.Seta or Mnemonic.Sets or Mnemonic.Setns or Mnemonic.Setp or
        Mnemonic.Setnp or Mnemonic.Setl or Mnemonic.Setge or Mnemonic.Setle or Mnemonic.Setg;

    internal static bool IsCmovcc(Mnemonic m) => m is Mnemonic.Cmovo or Mnemonic.Cmovno or Mnemonic.Cmovb or Mnemonic.Cmovae or
        Mnemonic.Cmove or Mnemonic.Cmovne or Mnemonic.Cmovbe or Mnemonic.Cmova or Mnemonic.Cmovs or Mnemonic.Cmovns or
        Mnemonic.Cmovp or Mnemonic.Cmovnp or Mnemonic.Cmovl or Mnemonic.Cmovge or Mnemonic.Cmovle or Mnemonic.Cmovg;

    private static delegate*<SoftwareCpu, in Instruction, void> For<C>(Kind kind) where C : struct, ICondition => kind switch
    {
        Kind.Jcc => &Jcc<C>,
        Kind.Jcc64 => &Jcc64<C>,
        Kind.Setcc => &Setcc<C>,
        Kind.Cmov64 => &Cmov64<C>,
        _ => &Cmov32<C>,
    };

    private static void Jcc<C>(SoftwareCpu cpu, in Instruction i) where C : struct, ICondition
    {
        if (cpu.ConditionInline(C.Code)) Control.JumpNear(cpu, i.NearBranchTarget);
    }

    /// <summary>Jcc decoded in 64-bit mode: the target is the instruction's 64-bit branch field.</summary>
    private static void Jcc64<C>(SoftwareCpu cpu, in Instruction i) where C : struct, ICondition
    {
        if (cpu.ConditionInline(C.Code)) Control.JumpNear(cpu, i.NearBranch64);
    }

    private static void Setcc<C>(SoftwareCpu cpu, in Instruction i) where C : struct, ICondition =>
        cpu.WriteOperand(in i, 0, cpu.ConditionInline(C.Code) ? 1UL : 0);

    /// <summary>CMOVcc r64, r/m64: the source is read (and may fault) whether or not the condition holds.</summary>
    private static void Cmov64<C>(SoftwareCpu cpu, in Instruction i) where C : struct, ICondition
    {
        var s = cpu.ReadOperand(in i, 1);
        if (cpu.ConditionInline(C.Code)) cpu.GprRef(i.Op0Register - Register.RAX) = s;
    }

    /// <summary>CMOVcc r32, r/m32: the destination is written (so zero-extended) even when the condition is false.</summary>
    private static void Cmov32<C>(SoftwareCpu cpu, in Instruction i) where C : struct, ICondition
    {
        var s = cpu.ReadOperand(in i, 1);
        ref var d = ref cpu.GprRef(i.Op0Register - Register.EAX);
        d = cpu.ConditionInline(C.Code) ? (uint)s : (uint)d;
    }
}
