using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Compiled blocks against the interpreter, which is the reference: random 64-bit programs built from the
/// forms the block compiler translates inline (and some it calls out for) run on two CPUs, one
/// interpreting and one compiling every block before its first run; registers, RFLAGS, RIP, the
/// instruction count and the data they wrote must be identical. A PUSHFQ after every few instructions
/// (a call-out, which reads all six arithmetic flags) folds the flag history into a register, so a flag
/// computed wrongly anywhere shows, not only the last one.
/// </summary>
public class CompiledBlockTests
{
    private const ulong Data = 0x40000;
    private static readonly AssemblerRegister64[] R64 = [rax, rbx, rcx, rdx, rsi, rdi, r8, r9, r10, r11, r12];
    private static readonly AssemblerRegister32[] R32 = [eax, ebx, ecx, edx, esi, edi, r8d, r9d, r10d, r11d, r12d];
    private static readonly AssemblerRegister8[] R8 = [al, bl, cl, dl, sil, dil, r8b, r9b, r10b, r11b, r12b];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomProgramRunsAlikeCompiledAndInterpreted(int seed) => CompareWithInterpreter(seed, threshold: 0);

    /// <summary>
    /// Compiled after two runs, when the links to the blocks after it exist: blocks are compiled together into
    /// regions, with the branches among them inside the compiled code.
    /// </summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomProgramRunsAlikeInterpretedAndCompiledInRegions(int seed) => CompareWithInterpreter(seed, threshold: 2);

    private static void CompareWithInterpreter(int seed, int threshold)
    {
        var program = RandomProgram(seed);
        var interpreted = Run(program, threshold: -1);
        var compiled = Run(program, threshold);
        Assert.Equal(CpuExitReason.Halted, interpreted.Exit);
        Assert.True(compiled.Cpu.BlocksSentToCompiler > 0, "no block was compiled");
        AssertSameState(interpreted, compiled, $"seed {seed}: ");
        Assert.Equal(DataArea(interpreted), DataArea(compiled));
    }

    /// <summary>The exit, registers, RFLAGS, RIP and instruction count of a compiled run are the interpreted run's.</summary>
    internal static void AssertSameState(GuestResult interpreted, GuestResult compiled, string context = "")
    {
        Assert.Equal(interpreted.Exit, compiled.Exit);
        for (var r = 0; r < 16; r++)
            Assert.True(interpreted.Cpu.Gprs[r] == compiled.Cpu.Gprs[r],
                $"{context}register {r}: interpreted {interpreted.Cpu.Gprs[r]:x}, compiled {compiled.Cpu.Gprs[r]:x}");
        Assert.Equal(interpreted.Cpu.GetFlags(), compiled.Cpu.GetFlags());
        Assert.Equal(interpreted.Cpu.Rip, compiled.Cpu.Rip);
        Assert.Equal(interpreted.Cpu.InstructionCount, compiled.Cpu.InstructionCount);
    }

    private static byte[] DataArea(GuestResult r)
    {
        var bytes = new byte[0x200];
        r.Memory.Read(Data, bytes);
        return bytes;
    }

    public static TheoryData<int> Seeds()
    {
        var d = new TheoryData<int>();
        for (var s = 1; s <= 60; s++) d.Add(s);
        return d;
    }

    /// <summary>
    /// IMUL sets CF = OF and keeps SF, ZF, AF and PF (as the host CPU does); compiled code computes them only where
    /// they are read. Each condition right after IMUL (with and without overflow, after flags from a CMP), ADC's
    /// carry-in, an INC, a store that takes the slow path (to a page of code) and a second IMUL must all see what
    /// the interpreter sees.
    /// </summary>
    [Theory]
    [MemberData(nameof(ImulFollowers))]
    public void FlagsAfterImulRunAlikeCompiledAndInterpreted(int cc, bool overflow, int follower) =>
        FlagsAfterPartialFlagWriterRunAlike(cc, overflow, follower, a => a.imul(rax, rbx), "imul");

    /// <summary>
    /// ROL and ROR write only CF and OF (from the result: ROL CF = bit 0, ROR CF = the top bit) and keep the rest, as
    /// IMUL does; compiled code leaves them pending the same way. The same followers as for IMUL, with rotate counts
    /// whose result sets CF and OF either way (RAX = 0x8000_0000_0000_0001; RBX picks the count).
    /// </summary>
    [Theory]
    [MemberData(nameof(ImulFollowers))]
    public void FlagsAfterRotateRunAlikeCompiledAndInterpreted(int cc, bool overflow, int follower)
    {
        FlagsAfterPartialFlagWriterRunAlike(cc, overflow, follower, a => a.rol(rax, overflow ? (byte)1 : (byte)2), "rol64");
        FlagsAfterPartialFlagWriterRunAlike(cc, overflow, follower, a => a.ror(rax, overflow ? (byte)1 : (byte)63), "ror64");
        FlagsAfterPartialFlagWriterRunAlike(cc, overflow, follower, a => a.rol(eax, overflow ? (byte)31 : (byte)3), "rol32");
        FlagsAfterPartialFlagWriterRunAlike(cc, overflow, follower, a => a.ror(eax, overflow ? (byte)1 : (byte)7), "ror32");
    }

    private static void FlagsAfterPartialFlagWriterRunAlike(int cc, bool overflow, int follower, Action<Assembler> writer, string name)
    {
        Action<Assembler> program = a =>
        {
            var code = a.CreateLabel();
            a.mov(r15, Data);
            a.mov(rax, 0x8000_0000_0000_0001UL);
            a.mov(rbx, overflow ? 4UL : 3UL);
            a.mov(rcx, 0x10);
            a.mov(rdx, 0x7F);
            a.mov(r14, 3);
            var top = a.CreateLabel();
            a.Label(ref top);
            a.cmp(rcx, rdx);                 // CF, SF and AF set, ZF clear: flags the IMUL keeps in part
            writer(a);
            switch (follower)
            {
                case 1: a.adc(rdx, 0); break;
                case 2: a.inc(rsi); break;
                case 3: a.lea(rdi, __[code]); a.mov(__byte_ptr[rdi], 0x90); break; // into this page: slow path
                case 4: a.imul(rbx, rbx, 1); break;
            }
            Setcc(a, cc, r8b);
            Cmov(a, cc, r9, rbx);
            a.pushfq();
            a.pop(r10);
            a.xor(r11, r10);
            a.add(r11, r8);
            var skip = a.CreateLabel();
            Jcc(a, cc, skip);
            a.inc(r12);
            a.Label(ref skip);
            a.mov(rax, 0x8000_0000_0000_0001UL);
            a.dec(r14);
            a.jnz(top);
            a.hlt();
            a.Label(ref code);
            a.nop();
        };
        var interpreted = Run(program, threshold: -1);
        var compiled = Run(program, threshold: 0);
        Assert.Equal(CpuExitReason.Halted, interpreted.Exit);
        AssertSameState(interpreted, compiled, $"{name}, cc {cc}, overflow {overflow}, follower {follower}: ");
    }

    public static TheoryData<int, bool, int> ImulFollowers()
    {
        var d = new TheoryData<int, bool, int>();
        for (var cc = 0; cc < 16; cc++)
            foreach (var overflow in new[] { false, true })
                for (var follower = 0; follower <= 4; follower++)
                    d.Add(cc, overflow, follower);
        return d;
    }

    [Fact]
    public void PageFaultInsideACompiledBlockLeavesTheStateOfTheFaultingInstruction()
    {
        // A block that changes registers and flags, then loads from a non-canonical address: #GP at the
        // load, with everything before it done and nothing after. The IDT is not set up, so the fault
        // escalates to a triple fault and the CPU stops right there, state intact.
        Action<Assembler> program = a =>
        {
            a.mov(rax, 5);
            a.add(rax, 7);
            a.mov(rbx, 0x8000_0000_0000_0000UL);
            a.cmp(rax, 12);
            a.mov(rcx, __qword_ptr[rbx]);
            a.mov(rdx, 99);
            a.hlt();
        };
        var interpreted = Run(program, threshold: -1);
        var compiled = Run(program, threshold: 0);
        Assert.Equal(CpuExitReason.Shutdown, interpreted.Exit);
        Assert.Equal(interpreted.Exit, compiled.Exit);
        Assert.Equal(12UL, compiled.Cpu.Gprs[Gpr.RAX]);
        Assert.NotEqual(99UL, compiled.Cpu.Gprs[Gpr.RDX]);
        Assert.Equal(interpreted.Cpu.Gprs[Gpr.RDX], compiled.Cpu.Gprs[Gpr.RDX]);
        Assert.Equal(interpreted.Cpu.GetFlags(), compiled.Cpu.GetFlags());
        Assert.Equal(interpreted.Cpu.InstructionCount, compiled.Cpu.InstructionCount);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    public void AccessesAcrossAPageBoundaryReachBothPhysicalPages(int threshold)
    {
        // Linear 0x301000 maps to physical 0x350000, so the bytes after 0x300FFF are not the ones after it in
        // host memory: an 8-byte load or store at 0x300FFC must be split by page, compiled as interpreted.
        const ulong split = 0x300FFC, elsewhere = 0x350000;
        var g = Long64.Create();
        g.Memory.WriteUInt64(Long64.PteAddress(0x301000), elsewhere | 3);
        g.Memory.WriteUInt32(split, 0x44332211);
        g.Memory.WriteUInt32(elsewhere, 0x88776655);
        g.Memory.WriteUInt32(0x301000, 0xEEEEEEEE);
        g.Cpu.CompileThreshold = threshold;
        g.Cpu.CompileSynchronously = true;
        var a = new Assembler(64);
        a.mov(rcx, 40);
        a.mov(rsi, split);
        a.mov(rdx, 0x0807060504030201UL);
        var top = a.CreateLabel();
        a.Label(ref top);
        a.mov(rax, __qword_ptr[rsi]);
        a.mov(__qword_ptr[rsi - 2], rdx);
        a.mov(rbx, __qword_ptr[rsi]);
        a.dec(rcx);
        a.jnz(top);
        a.hlt();
        g.Load(a, GuestKit.GuestRunner.DefaultLoad);

        var r = g.Run();

        Assert.Equal(CpuExitReason.Halted, r.Exit);
        // The store put 01..06 at 0x300FFA-0x300FFF and 07 08 at physical 0x350000; 0x350002-3 kept 77 88.
        Assert.Equal(0x8877080706050403UL, r.Cpu.Gprs[Gpr.RAX]);
        Assert.Equal(0x8877080706050403UL, r.Cpu.Gprs[Gpr.RBX]);
        Assert.Equal(0x88770807u, g.Memory.ReadUInt32(elsewhere));
        Assert.Equal(0xEEEEEEEEu, g.Memory.ReadUInt32(0x301000));
    }

    private static GuestResult Run(Action<Assembler> program, int threshold) =>
        GuestRunner.Run(StartMode.Long64, program, maxInstructions: 2_000_000, setup: (cpu, _) =>
        {
            cpu.CompileThreshold = threshold;
            cpu.CompileSynchronously = true;
        });

    private static Action<Assembler> RandomProgram(int seed) => a =>
    {
        var rng = new Random(seed);
        a.mov(r15, Data);
        a.xor(r13, r13);
        for (var r = 0; r < R64.Length; r++) a.mov(R64[r], (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40));
        // Run the body several times, so blocks are entered from their links as well.
        a.mov(r14, 5);
        var top = a.CreateLabel();
        a.Label(ref top);
        for (var n = 0; n < 60; n++)
        {
            Emit(a, rng);
            if (n % 3 == 2)
            {
                a.pushfq();
                a.pop(rbp);
                a.and(rbp, 0x8D5); // OF, SF, ZF, AF, PF, CF
                a.xor(r13, rbp);
                a.rol(r13, 5);
            }
        }
        a.dec(r14);
        a.jnz(top);
        a.hlt();
    };

    private static void Emit(Assembler a, Random rng)
    {
        var d64 = R64[rng.Next(R64.Length)];
        var s64 = R64[rng.Next(R64.Length)];
        var d32 = R32[rng.Next(R32.Length)];
        var s32 = R32[rng.Next(R32.Length)];
        var d8 = R8[rng.Next(R8.Length)];
        var disp = rng.Next(0, 0x1F0) & ~7;
        var imm = rng.Next(-200, 200);
        var cc = rng.Next(16);
        switch (rng.Next(34))
        {
            case 0: a.mov(d64, s64); break;
            case 1: a.mov(d32, (uint)rng.Next()); break;
            case 2: a.add(d64, s64); break;
            case 3: a.sub(d32, s32); break;
            case 4: a.cmp(d64, imm); break;
            case 5: a.and(d64, s64); break;
            case 6: a.or(d32, imm); break;
            case 7: a.xor(d64, s64); break;
            case 8: a.test(d32, s32); break;
            case 9: a.adc(d64, s64); break;
            case 10: a.sbb(d32, imm); break;
            case 11: a.add(d64, __qword_ptr[r15 + disp]); break;
            case 12: a.cmp(__dword_ptr[r15 + disp], s32); break;
            case 13: a.cmp(__byte_ptr[r15 + disp], (byte)imm); break;
            case 14: a.mov(__qword_ptr[r15 + disp], s64); break;
            case 15: a.mov(d32, __dword_ptr[r15 + disp]); break;
            case 16: a.mov(__byte_ptr[r15 + disp], d8); break;
            case 17: if (rng.Next(2) == 0) a.inc(d64); else a.dec(d32); break;
            case 18: if (rng.Next(2) == 0) a.neg(d64); else a.not(d32); break;
            case 19:
                switch (rng.Next(5))
                {
                    case 0: a.shl(d64, (byte)rng.Next(0, 64)); break;
                    case 1: a.shr(d32, (byte)rng.Next(0, 32)); break;
                    case 2: a.rol(d32, (byte)rng.Next(0, 32)); break;
                    case 3: a.ror(d64, (byte)rng.Next(0, 64)); break;
                    default: a.sar(d64, (byte)rng.Next(0, 64)); break;
                }
                break;
            case 20: a.imul(d64, s64); break;
            case 21: a.imul(d32, s32, imm); break;
            case 22: a.movzx(d32, R8[rng.Next(R8.Length)]); break;
            case 23: a.movsx(d64, __word_ptr[r15 + disp]); break;
            case 24: a.movsxd(d64, s32); break;
            case 25: Cmov(a, cc, d64, s64); break;
            case 26: Setcc(a, cc, d8); break;
            case 27: a.lea(d64, __[s64 + R64[rng.Next(R64.Length)] * 4 + imm]); break;
            case 28: a.push(s64); a.pop(d64); break;
            case 29: a.cmp(d8, (byte)imm); break;
            case 30:
            {
                // A conditional branch over one instruction: more, shorter blocks.
                var skip = a.CreateLabel();
                Jcc(a, cc, skip);
                a.xor(d64, s64);
                a.Label(ref skip);
                break;
            }
            // Call-outs between inline instructions: the sync around them matters.
            case 31: a.bswap(d64); break;
            case 32: a.bt(d64, s64); break;
            default: a.xchg(d64, s64); break;
        }
    }

    private static void Cmov(Assembler a, int cc, AssemblerRegister64 d, AssemblerRegister64 s)
    {
        switch (cc)
        {
            case 0: a.cmovo(d, s); break; case 1: a.cmovno(d, s); break; case 2: a.cmovb(d, s); break; case 3: a.cmovae(d, s); break;
            case 4: a.cmove(d, s); break; case 5: a.cmovne(d, s); break; case 6: a.cmovbe(d, s); break; case 7: a.cmova(d, s); break;
            case 8: a.cmovs(d, s); break; case 9: a.cmovns(d, s); break; case 10: a.cmovp(d, s); break; case 11: a.cmovnp(d, s); break;
            case 12: a.cmovl(d, s); break; case 13: a.cmovge(d, s); break; case 14: a.cmovle(d, s); break; default: a.cmovg(d, s); break;
        }
    }

    private static void Setcc(Assembler a, int cc, AssemblerRegister8 d)
    {
        switch (cc)
        {
            case 0: a.seto(d); break; case 1: a.setno(d); break; case 2: a.setb(d); break; case 3: a.setae(d); break;
            case 4: a.sete(d); break; case 5: a.setne(d); break; case 6: a.setbe(d); break; case 7: a.seta(d); break;
            case 8: a.sets(d); break; case 9: a.setns(d); break; case 10: a.setp(d); break; case 11: a.setnp(d); break;
            case 12: a.setl(d); break; case 13: a.setge(d); break; case 14: a.setle(d); break; default: a.setg(d); break;
        }
    }

    private static void Jcc(Assembler a, int cc, Label l)
    {
        switch (cc)
        {
            case 0: a.jo(l); break; case 1: a.jno(l); break; case 2: a.jb(l); break; case 3: a.jae(l); break;
            case 4: a.je(l); break; case 5: a.jne(l); break; case 6: a.jbe(l); break; case 7: a.ja(l); break;
            case 8: a.js(l); break; case 9: a.jns(l); break; case 10: a.jp(l); break; case 11: a.jnp(l); break;
            case 12: a.jl(l); break; case 13: a.jge(l); break; case 14: a.jle(l); break; default: a.jg(l); break;
        }
    }
}
