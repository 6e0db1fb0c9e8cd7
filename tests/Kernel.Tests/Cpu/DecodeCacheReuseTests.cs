using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// What the decode cache keeps across events that change nothing it depends on. A store into a page of code
/// that leaves a block's own bytes as they were (Linux patches jump labels into pages of hot code all through
/// its boot) must not cost the block its decode, run count or compiled code. An interrupt and IRET within the
/// kernel change no translation, so they must not cost the links between blocks.
/// </summary>
public class DecodeCacheReuseTests
{
    private const int Iterations = 200;

    /// <summary>A loop that adds its counter to EBX and stores EBX into a dword of its own code page, past the HLT.</summary>
    private static CpuHarness LoopStoringIntoItsCodePage()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a =>
        {
            var loop = a.CreateLabel();
            var data = a.CreateLabel();
            a.mov(ecx, Iterations);
            a.xor(ebx, ebx);
            a.lea(rdi, __[data]);
            a.Label(ref loop);
            a.add(ebx, ecx);
            a.mov(__dword_ptr[rdi], ebx);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
            a.Label(ref data);
            a.dd(0);
        });
        return h;
    }

    [Fact]
    public void StoresBesideCachedBlocksInTheirPageDoNotDecodeThemAgain()
    {
        var h = LoopStoringIntoItsCodePage();
        Assert.Equal(CpuExitReason.Halted, h.Cpu.Run(10_000));
        const ulong sum = Iterations * (Iterations + 1) / 2;
        Assert.Equal(sum, h[Gpr.RBX]);
        // Every iteration's store moved the page's code version on; decoding the loop again each time would
        // decode at least one block per iteration.
        Assert.InRange(h.Cpu.BlocksDecoded, 1, 10);
    }

    [Fact]
    public void StoresBesideACompiledBlockInItsPageKeepItCompiled()
    {
        var h = LoopStoringIntoItsCodePage();
        h.Cpu.CompileThreshold = 2;
        h.Cpu.CompileSynchronously = true;
        Assert.Equal(CpuExitReason.Halted, h.Cpu.Run(10_000));
        Assert.Equal((ulong)Iterations * (Iterations + 1) / 2, h[Gpr.RBX]);
        // Decoded anew after each store, a block would start counting again and never reach the threshold.
        Assert.InRange(h.Cpu.BlocksSentToCompiler, 1, 4);
        Assert.True(h.Cpu.CompiledInstructions > h.Cpu.InstructionCount / 2,
            $"{h.Cpu.CompiledInstructions} of {h.Cpu.InstructionCount} instructions ran compiled");
    }

    /// <summary>
    /// A function called from two places in a loop returns to each in turn, so the link its RET block keeps (the
    /// last target) is wrong every time: the jump cache must find the return target without a full lookup.
    /// </summary>
    [Fact]
    public void ReturnsToAlternatingCallersAreFoundInTheJumpCache()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a =>
        {
            var loop = a.CreateLabel();
            var function = a.CreateLabel();
            a.mov(ecx, Iterations);
            a.xor(ebx, ebx);
            a.Label(ref loop);
            a.call(function);
            a.add(ebx, 1);
            a.call(function);
            a.add(ebx, 2);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
            a.Label(ref function);
            a.add(ebx, ecx);
            a.ret();
        });
        Assert.Equal(CpuExitReason.Halted, h.Cpu.Run(100_000));
        Assert.Equal((ulong)Iterations * 3 + (ulong)Iterations * (Iterations + 1), h[Gpr.RBX]);
        Assert.True(h.Cpu.JumpCacheHits >= Iterations, $"{h.Cpu.JumpCacheHits} jump-cache hits");
        Assert.InRange(h.Cpu.BlockLookups, 1, 10);
    }

    /// <summary>
    /// A loop of several blocks compiled as one region; halfway through, a store patches the immediate of an
    /// instruction in a block other than the region's first. The region must not be revalidated with that block's
    /// old bytes: compiled after two runs (regions form then) and interpreted, the sums must agree.
    /// </summary>
    [Fact]
    public void PatchingABlockOfACompiledRegionTakesEffect()
    {
        Action<Assembler> program = a =>
        {
            var loop = a.CreateLabel();
            var odd = a.CreateLabel();
            var join = a.CreateLabel();
            var skip = a.CreateLabel();
            a.mov(ecx, Iterations);
            a.xor(ebx, ebx);
            a.mov(eax, 1);
            a.lea(rdi, __[odd]);
            a.Label(ref loop);
            a.test(cl, 1);
            a.jne(odd);
            a.add(ebx, 1);
            a.jmp(join);
            a.Label(ref odd);
            a.db(0x05, 100, 0, 0, 0);        // add eax, imm32 (imm at odd + 1)
            a.add(ebx, eax);
            a.Label(ref join);
            a.cmp(ecx, Iterations / 2);
            a.jne(skip);
            a.mov(__dword_ptr[rdi + 1], 7); // once: the odd iterations add 7 from here on
            a.Label(ref skip);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        };
        GuestResult Run(int threshold) => GuestRunner.Run(StartMode.Long64, program, setup: (cpu, _) =>
        {
            cpu.CompileThreshold = threshold;
            cpu.CompileSynchronously = true;
        });
        var interpreted = Run(-1);
        var compiled = Run(2);
        Assert.Equal(CpuExitReason.Halted, interpreted.Exit);
        Assert.True(compiled.Cpu.BlocksSentToCompiler > 0);
        CompiledBlockTests.AssertSameState(interpreted, compiled);
    }

    [Fact]
    public void InterruptsWithinTheKernelKeepTheLinksBetweenBlocks()
    {
        const ulong idt = 0x30000, idtr = 0x2F000, handler = 0x50000;
        const int vector = 0x40;
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => a.iretq(), at: handler);
        h.Load(a =>
        {
            GuestImages.LoadIdt64WithGate(a, vector, handler, idt, idtr);
            var loop = a.CreateLabel();
            a.mov(ecx, Iterations);
            a.xor(ebx, ebx);
            a.Label(ref loop);
            a.add(ebx, ecx);
            a.@int(vector);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        Assert.Equal(CpuExitReason.Halted, h.Cpu.Run(10_000));
        Assert.Equal((ulong)Iterations * (Iterations + 1) / 2, h[Gpr.RBX]);
        // Each iteration passes three block boundaries (into the handler, back, round the loop); a CS load
        // that dropped the links would send two of them to a lookup every time.
        Assert.InRange(h.Cpu.BlockLookups, 1, Iterations / 10);
    }
}
