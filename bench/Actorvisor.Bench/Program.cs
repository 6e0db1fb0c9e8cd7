using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using System.Diagnostics;
using Actorvisor.Bench;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Iced.Intel;

// Guest instructions per second of the software CPU on compute-heavy 64-bit guest loops.
// Usage: actorvisor-bench [cpu] [--repeat N]
//        actorvisor-bench telemetry [--linux] [--repeat N]   (telemetry off / metrics / every class traced: TelemetryCost.cs)
//        actorvisor-bench jit CORPUS [--repeat N]   (translation cost of a run's compiled blocks: JitCost.cs)
//        actorvisor-bench micro [BenchmarkDotNet arguments]   (the hot paths one by one: Micro*.cs)
if (args.FirstOrDefault() == "telemetry") return TelemetryCost.Run(args);
if (args.FirstOrDefault() == "jit") return JitCost.Run(args);
if (args.FirstOrDefault() == "micro")
{
    // In process: the bench's assembly name differs from its project's, which BenchmarkDotNet's generated
    // projects cannot find; short runs (3 warm-ups, 3 iterations) keep the whole set to a few minutes.
    var job = Job.ShortRun.WithToolchain(BenchmarkDotNet.Toolchains.InProcess.Emit.InProcessEmitToolchain.Instance);
    BenchmarkDotNet.Running.BenchmarkSwitcher.FromTypes([typeof(MicroCpu), typeof(MicroDevices)])
        .Run(args[1..], DefaultConfig.Instance.AddJob(job));
    return 0;
}
var repeat = args.SkipWhile(a => a != "--repeat").Skip(1).Select(int.Parse).FirstOrDefault(3);
var cases = new (string Name, Action<Assembler> Program)[]
{
    ("checksum", a => GuestLoops.Checksum(a, 40)),
    ("sort", a => GuestLoops.Sort(a, 40)),
};

Console.WriteLine($"{"case",-10} {"instructions",14} {"seconds",9} {"MIPS",8}   (best of {repeat}, after one warm-up)");
foreach (var (name, program) in cases)
{
    var best = double.MaxValue;
    long count = 0;
    for (var r = 0; r <= repeat; r++)
    {
        var (n, secs) = RunOnce(program);
        if (r == 0) continue; // warm-up: JIT tiers settle
        count = n;
        best = Math.Min(best, secs);
    }
    Console.WriteLine($"{name,-10} {count,14:N0} {best,9:F3} {count / best / 1e6,8:F1}");
}

return 0;

static (long Instructions, double Seconds) RunOnce(Action<Assembler> program)
{
    var asm = new Assembler(64);
    program(asm);
    var ms = new MemoryStream();
    asm.Assemble(new StreamCodeWriter(ms), GuestLoops.Load);
    using var memory = new GuestMemory(64 << 20);
    memory.Write(GuestLoops.Load, ms.ToArray());
    var cpu = new SoftwareCpu(0, memory, new NullPlatform());
    CpuSetup.EnterLongMode(cpu, GuestLoops.Load, 0x80000);
    var sw = Stopwatch.StartNew();
    var exit = cpu.Run();
    sw.Stop();
    if (exit != CpuExitReason.Halted) throw new InvalidOperationException($"guest stopped with {exit}: {cpu}");
    return (cpu.InstructionCount, sw.Elapsed.TotalSeconds);
}

internal sealed class NullPlatform : ICpuPlatform
{
    public uint PortRead(int vcpuId, ushort port, int size) => uint.MaxValue;
    public void PortWrite(int vcpuId, ushort port, int size, uint value) { }
    public ulong MmioRead(int vcpuId, ulong address, int size) => ulong.MaxValue;
    public void MmioWrite(int vcpuId, ulong address, int size, ulong value) { }
}
