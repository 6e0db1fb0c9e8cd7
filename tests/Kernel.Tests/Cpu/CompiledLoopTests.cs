using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// A compiled block that branches back to its own start runs its iterations inside the compiled method.
/// Between iterations it must stop where the run loop stops between blocks: for a deliverable interrupt
/// (taken at the same instruction count as when interpreted) and at the end of the run's budget.
/// </summary>
public class CompiledLoopTests
{
    private const ulong Data = 0x40000, Idt = 0x30000, Idtr = 0x2F000, Handler = 0x50000;
    private const int Vector = 0x40;

    /// <summary>A one-block loop of 3,000 iterations (7 instructions each) with a store, ending in DEC/JNZ.</summary>
    private static void Program(Assembler a)
    {
        GuestImages.InstallGate64(a, Idt, Vector, Handler);
        a.mov(__word_ptr[Idtr], 0xFFF);
        a.mov(rax, Idt);
        a.mov(__qword_ptr[Idtr + 2], rax);
        a.lidt(__[Idtr]);
        a.mov(rcx, 3000);
        a.xor(eax, eax);
        a.xor(r8d, r8d);
        a.mov(rsi, Data);
        a.sti();
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

    /// <summary>The handler notes the loop counter it interrupted and how often it ran.</summary>
    private static readonly byte[] HandlerCode = GuestImages.Assemble(64, Handler, a =>
    {
        a.mov(r9, rcx);
        a.inc(r12);
        a.iretq();
    });

    private static (GuestResult Result, OneShotInterrupt? Irq) Run(int threshold, long interruptAfter = -1, long budget = 1_000_000)
    {
        OneShotInterrupt? irq = null;
        var r = GuestRunner.Run(StartMode.Long64, Program, maxInstructions: budget, setup: (cpu, memory) =>
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
        Assert.Equal(interpreted.Exit, compiled.Exit);
        for (var r = 0; r < 16; r++)
            Assert.True(interpreted.Cpu.Gprs[r] == compiled.Cpu.Gprs[r],
                $"register {r}: interpreted {interpreted.Cpu.Gprs[r]:x}, compiled {compiled.Cpu.Gprs[r]:x}");
        Assert.Equal(interpreted.Cpu.GetFlags(), compiled.Cpu.GetFlags());
        Assert.Equal(interpreted.Cpu.Rip, compiled.Cpu.Rip);
        Assert.Equal(interpreted.Cpu.InstructionCount, compiled.Cpu.InstructionCount);
        Assert.Equal(interpreted.Memory.ReadUInt64(Data + 8), compiled.Memory.ReadUInt64(Data + 8));
    }

    [Fact]
    public void TheLoopRunsInsideTheCompiledBlockToTheSameResult()
    {
        var (interpreted, _) = Run(threshold: -1);
        var (compiled, _) = Run(threshold: 0);
        Assert.Equal(CpuExitReason.Halted, interpreted.Exit);
        AssertSameState(interpreted, compiled);
        Assert.Equal(3000UL, compiled.Cpu.Gprs[Gpr.R8]);
        // Nearly every instruction ran compiled: the loop did not go back to the interpreter per iteration.
        Assert.True(compiled.Cpu.CompiledInstructions > 20_000, $"{compiled.Cpu.CompiledInstructions} instructions ran compiled");
    }

    [Theory]
    [InlineData(1_000)]
    [InlineData(7_777)]
    [InlineData(15_003)]
    public void AnInterruptIsTakenBetweenTheSameIterationsAsWhenInterpreted(long after)
    {
        var (interpreted, irqI) = Run(threshold: -1, interruptAfter: after);
        var (compiled, irqC) = Run(threshold: 0, interruptAfter: after);
        Assert.Equal(1, irqI!.Acknowledged);
        Assert.Equal(1, irqC!.Acknowledged);
        Assert.Equal(irqI.AcknowledgedAt, irqC.AcknowledgedAt);
        Assert.Equal(1UL, compiled.Cpu.Gprs[Gpr.R12]);
        Assert.Equal(interpreted.Cpu.Gprs[Gpr.R9], compiled.Cpu.Gprs[Gpr.R9]); // the counter it interrupted
        AssertSameState(interpreted, compiled);
    }

    [Theory]
    [InlineData(1_003)]
    [InlineData(10_000)]
    public void ABudgetEndingInsideTheLoopStopsAtTheSameInstruction(long budget)
    {
        var (interpreted, _) = Run(threshold: -1, budget: budget);
        var (compiled, _) = Run(threshold: 0, budget: budget);
        Assert.Equal(CpuExitReason.InstructionLimit, interpreted.Exit);
        Assert.Equal(budget, compiled.Cpu.InstructionCount);
        AssertSameState(interpreted, compiled);
    }
}
