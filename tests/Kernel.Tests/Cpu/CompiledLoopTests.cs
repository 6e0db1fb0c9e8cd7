using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Loops run inside compiled code: a block that branches back to its own start, and a region of blocks
/// compiled into one method (a loop with an if/else inside). Between blocks the compiled code must stop where
/// the run loop stops between blocks: for a deliverable interrupt (taken at the same instruction count as when
/// interpreted) and at the end of the run's budget.
/// </summary>
public class CompiledLoopTests
{
    private const ulong Data = 0x40000, Idt = 0x30000, Idtr = 0x2F000, Handler = 0x50000;
    private const int Vector = 0x40;

    /// <summary>A one-block loop of 3,000 iterations (7 instructions each) with a store, ending in DEC/JNZ.</summary>
    private static void OneBlockLoop(Assembler a)
    {
        Prologue(a);
        var top = a.CreateLabel();
        a.Label(ref top);
        a.add(rax, rcx);
        a.imul(rax, rax, 3);
        a.mov(__qword_ptr[rsi + 8], rax);
        a.xor(rax, rcx);
        a.add(r8d, 1);
        a.dec(rcx);
        a.jne(top);
        a.cli();
        a.hlt();
    }

    /// <summary>The same loop with an if/else on the counter's low bit inside: four blocks, which a region joins.</summary>
    private static void LoopWithBranches(Assembler a)
    {
        Prologue(a);
        var top = a.CreateLabel();
        var even = a.CreateLabel();
        var join = a.CreateLabel();
        a.Label(ref top);
        a.add(rax, rcx);
        a.test(cl, 1);
        a.je(even);
        a.imul(rax, rax, 3);
        a.jmp(join);
        a.Label(ref even);
        a.xor(rax, rcx);
        a.Label(ref join);
        a.mov(__qword_ptr[rsi + 8], rax);
        a.add(r8d, 1);
        a.dec(rcx);
        a.jne(top);
        a.cli();
        a.hlt();
    }

    private static void Prologue(Assembler a)
    {
        GuestImages.LoadIdt64WithGate(a, Vector, Handler, Idt, Idtr);
        a.mov(rcx, 3000);
        a.xor(eax, eax);
        a.xor(r8d, r8d);
        a.mov(rsi, Data);
        a.sti();
    }

    private static Action<Assembler> Program(string name) => name == "one-block" ? OneBlockLoop : LoopWithBranches;

    /// <summary>The handler notes the loop counter it interrupted and how often it ran.</summary>
    private static readonly byte[] HandlerCode = GuestImages.Assemble(64, Handler, a =>
    {
        a.mov(r9, rcx);
        a.inc(r12);
        a.iretq();
    });

    /// <summary>
    /// Threshold 0 compiles a block at its first run, before its successors exist (one-block regions);
    /// 3 compiles after three runs, when the links the regions are formed from are there.
    /// </summary>
    private static (GuestResult Result, OneShotInterrupt? Irq) Run(string program, int threshold, long interruptAfter = -1,
        long budget = 1_000_000)
    {
        OneShotInterrupt? irq = null;
        var r = GuestRunner.Run(StartMode.Long64, Program(program), maxInstructions: budget, setup: (cpu, memory) =>
        {
            memory.Write(Handler, HandlerCode);
            cpu.CompileThreshold = threshold;
            cpu.CompileSynchronously = true;
            if (interruptAfter >= 0) cpu.Interrupts = irq = new OneShotInterrupt(cpu, Vector, interruptAfter);
        });
        return (r, irq);
    }

    private static void AssertSameState(GuestResult interpreted, GuestResult compiled)
    {
        CompiledBlockTests.AssertSameState(interpreted, compiled);
        Assert.Equal(interpreted.Memory.ReadUInt64(Data + 8), compiled.Memory.ReadUInt64(Data + 8));
    }

    public static TheoryData<string, int> Programs() => new()
    {
        { "one-block", 0 }, { "one-block", 3 }, { "branches", 0 }, { "branches", 3 },
    };

    [Theory]
    [MemberData(nameof(Programs))]
    public void TheLoopRunsInsideTheCompiledCodeToTheSameResult(string program, int threshold)
    {
        var (interpreted, _) = Run(program, threshold: -1);
        var (compiled, _) = Run(program, threshold);
        Assert.Equal(CpuExitReason.Halted, interpreted.Exit);
        AssertSameState(interpreted, compiled);
        Assert.Equal(3000UL, compiled.Cpu.Gprs[Gpr.R8]);
        Assert.True(compiled.Cpu.CompiledInstructions > 15_000, $"{compiled.Cpu.CompiledInstructions} instructions ran compiled");
    }

    [Fact]
    public void ARegionKeepsALoopOfSeveralBlocksInItsCompiledCode()
    {
        // Compiled block by block, each iteration of the if/else loop goes through the run loop three times;
        // compiled as a region, only interrupts and the budget would make it leave. Instructions the region
        // ran per return to the run loop tell the two apart.
        var (alone, _) = Run("branches", threshold: 0);
        var (region, _) = Run("branches", threshold: 3);
        Assert.True(region.Cpu.CompiledCalls * 10 < alone.Cpu.CompiledCalls,
            $"region: {region.Cpu.CompiledCalls} calls of compiled code; block by block: {alone.Cpu.CompiledCalls}");
    }

    [Theory]
    [InlineData("one-block", 0, 1_000)]
    [InlineData("one-block", 0, 7_777)]
    [InlineData("one-block", 3, 15_003)]
    [InlineData("branches", 0, 1_000)]
    [InlineData("branches", 3, 1_000)]
    [InlineData("branches", 3, 7_777)]
    [InlineData("branches", 3, 15_003)]
    public void AnInterruptIsTakenBetweenTheSameBlocksAsWhenInterpreted(string program, int threshold, long after)
    {
        var (interpreted, irqI) = Run(program, threshold: -1, interruptAfter: after);
        var (compiled, irqC) = Run(program, threshold, interruptAfter: after);
        Assert.Equal(1, irqI!.Acknowledged);
        Assert.Equal(1, irqC!.Acknowledged);
        Assert.Equal(irqI.AcknowledgedAt, irqC.AcknowledgedAt);
        Assert.Equal(1UL, compiled.Cpu.Gprs[Gpr.R12]);
        Assert.Equal(interpreted.Cpu.Gprs[Gpr.R9], compiled.Cpu.Gprs[Gpr.R9]); // the counter it interrupted
        AssertSameState(interpreted, compiled);
    }

    [Theory]
    [InlineData("one-block", 0, 1_003)]
    [InlineData("one-block", 0, 10_000)]
    [InlineData("branches", 3, 1_003)]
    [InlineData("branches", 3, 10_001)]
    public void ABudgetEndingInsideTheLoopStopsAtTheSameInstruction(string program, int threshold, long budget)
    {
        var (interpreted, _) = Run(program, threshold: -1, budget: budget);
        var (compiled, _) = Run(program, threshold, budget: budget);
        Assert.Equal(CpuExitReason.InstructionLimit, interpreted.Exit);
        Assert.Equal(budget, compiled.Cpu.InstructionCount);
        AssertSameState(interpreted, compiled);
    }
}
