using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using BenchmarkDotNet.Attributes;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Bench;

/// <summary>
/// The CPU engine's hot paths, per guest instruction: dispatch of register-only instructions, and loads and
/// stores through the software TLB (every access a TLB hit on four pages), interpreted and compiled. Each
/// invocation runs the guest loop for <see cref="Instructions"/> instructions; BenchmarkDotNet reports the
/// time per instruction.
/// </summary>
[MemoryDiagnoser]
public class MicroCpu
{
    private const int Instructions = 1_000_000;
    private const ulong Load = 0x100000, Data = 0x200000;

    [Params("interpreted", "compiled")]
    public string Engine { get; set; } = "interpreted";

    private GuestMemory? _memory;
    private SoftwareCpu? _registers, _memoryCpu;

    [GlobalSetup]
    public void Setup()
    {
        _memory = new GuestMemory(16 << 20);
        _registers = Cpu(RegisterLoop, 0x10000);
        _memoryCpu = Cpu(MemoryLoop, 0x20000);
    }

    [GlobalCleanup]
    public void Cleanup() => _memory?.Dispose();

    /// <summary>ADD, XOR, IMUL, SHR, MOV and a CMP/JNE, forever.</summary>
    private static void RegisterLoop(Assembler a)
    {
        var top = a.CreateLabel();
        a.mov(rax, 1);
        a.Label(ref top);
        a.add(rax, rbx);
        a.xor(rcx, rax);
        a.imul(rdx, rcx, 7);
        a.shr(rdx, 3);
        a.mov(rbx, rdx);
        a.cmp(rax, 0);
        a.jne(top);
        a.jmp(top);
    }

    /// <summary>Loads and stores over four pages (16 KiB), forever.</summary>
    private static void MemoryLoop(Assembler a)
    {
        var top = a.CreateLabel();
        a.mov(rsi, Data);
        a.xor(ecx, ecx);
        a.Label(ref top);
        a.mov(rax, __qword_ptr[rsi + rcx]);
        a.add(rax, 1);
        a.mov(__qword_ptr[rsi + rcx + 8], rax);
        a.add(ecx, 16);
        a.and(ecx, 0x3FFF);
        a.jmp(top);
    }

    private SoftwareCpu Cpu(Action<Assembler> program, ulong origin)
    {
        var code = Actorvisor.TestSupport.GuestImages.Assemble(64, Load + origin, program);
        _memory!.Write(Load + origin, code);
        var cpu = new SoftwareCpu(0, _memory, new NullPlatform())
        {
            CompileThreshold = Engine == "compiled" ? 0 : -1,
            CompileSynchronously = true,
        };
        CpuSetup.EnterLongMode(cpu, Load + origin, 0x80000);
        cpu.Run(10_000); // decoded, compiled, JIT tiers warm
        return cpu;
    }

    [Benchmark(OperationsPerInvoke = Instructions)]
    public void RegisterInstructions() => _registers!.Run(Instructions);

    [Benchmark(OperationsPerInvoke = Instructions)]
    public void MemoryInstructionsThroughTheTlb() => _memoryCpu!.Run(Instructions);
}
