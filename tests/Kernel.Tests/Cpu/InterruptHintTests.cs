using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using Actorvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// An interrupt source that signals its changes (the LAPIC) is asked only after a change: a posted input, a write
/// to its registers, or the CPU's own change of CR8 or an MSR. One that does not is asked at every block boundary.
/// Either way an interrupt is taken at the first boundary where it is deliverable.
/// </summary>
public class InterruptHintTests
{
    private const ulong Idt = 0x30000, Idtr = 0x2F000, Handler = 0x50000;
    private const int Vector = 0x40;

    /// <summary>Pending while <paramref name="pending"/> says so and not yet taken; counts the questions.</summary>
    private sealed class Source(bool signals, Func<bool> pending) : IInterruptSource
    {
        public int Asked;
        public bool Taken;
        public bool SignalsChanges => signals;
        public bool HasPendingInterrupt { get { Asked++; return !Taken && pending(); } }
        public int AcknowledgeInterrupt() { Taken = true; return Vector; }
    }

    private static readonly byte[] HandlerCode = GuestImages.Assemble(64, Handler, a =>
    {
        a.mov(r9d, 0x99);
        a.cli();
        a.hlt();
    });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ASourceThatSignalsChangesIsNotAskedAtEveryBlock(bool signals)
    {
        Source? source = null;
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            GuestImages.LoadIdt64WithGate(a, Vector, Handler, Idt, Idtr);
            var loop = a.CreateLabel();
            a.mov(ecx, 2000);
            a.sti();
            a.Label(ref loop);
            a.dec(ecx);
            a.jnz(loop);
            a.cli();
            a.hlt();
        }, setup: (cpu, memory) =>
        {
            memory.Write(Handler, HandlerCode);
            cpu.Interrupts = source = new Source(signals, () => false);
        });
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        if (signals) Assert.InRange(source!.Asked, 1, 3);
        else Assert.True(source!.Asked >= 2000, $"asked {source.Asked} times in a loop of 2000 blocks");
    }

    /// <summary>
    /// The source holds a vector the TPR masks (CR8 = 15); MOV CR8, 0 unmasks it, and the CPU must ask again
    /// at the next boundary without being told: the handler runs before the instruction after the MOV.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void LoweringCr8MakesTheCpuAskAgain(int threshold)
    {
        SoftwareCpu? theCpu = null;
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            GuestImages.LoadIdt64WithGate(a, Vector, Handler, Idt, Idtr);
            var loop = a.CreateLabel();
            a.mov(eax, 15);
            a.mov(cr8, rax);
            a.mov(ecx, 50);
            a.sti();
            a.Label(ref loop);                 // a loop with the vector masked: asked once, then not again
            a.dec(ecx);
            a.jnz(loop);
            a.xor(eax, eax);
            a.mov(cr8, rax);
            a.mov(ebx, 1);
            a.cli();
            a.hlt();
        }, setup: (cpu, memory) =>
        {
            theCpu = cpu;
            memory.Write(Handler, HandlerCode);
            cpu.CompileThreshold = threshold;
            cpu.CompileSynchronously = true;
            cpu.Interrupts = new Source(true, () => theCpu!.Cr8 < 8);
        });
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal(0x99UL, r.Reg(Gpr.R9));
        Assert.Equal(0UL, r.Reg(Gpr.RBX));
    }
}
