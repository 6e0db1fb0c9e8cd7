using Actorvisor.Kernel.Cpu.Jit;

namespace Actorvisor.Bench;

/// <summary>
/// The translation cost of the blocks a real run compiled (a corpus written with ACTORVISOR_JIT_CORPUS=FILE):
/// CPU time to emit and JIT-compile all of them, best of N passes after a warm-up pass. On one thread and in
/// CPU time, so it is steadier than a boot under a shared machine's noise.
/// </summary>
internal static class JitCost
{
    public static int Run(string[] args)
    {
        if (args.Length < 2 || !File.Exists(args[1]))
        {
            Console.Error.WriteLine("usage: actorvisor-bench jit CORPUS [--repeat N]  (write CORPUS with ACTORVISOR_JIT_CORPUS=CORPUS actorvisor run ...)");
            return 2;
        }
        var repeat = args.SkipWhile(a => a != "--repeat").Skip(1).Select(int.Parse).FirstOrDefault(3);
        JitCorpus.CompileAll(args[1]);
        var best = JitCorpus.CompileAll(args[1]);
        for (var r = 1; r < repeat; r++)
        {
            var c = JitCorpus.CompileAll(args[1]);
            if (c.Cpu < best.Cpu) best = c;
        }
        Console.WriteLine($"{best.Regions} regions, {best.Compiled} compiled, {best.IlBytes / 1024.0:F0} KiB IL: " +
                          $"{best.Cpu.TotalMilliseconds:F0} ms CPU ({best.Cpu.TotalMilliseconds / Math.Max(1, best.Compiled):F2} ms per method, " +
                          $"{best.Cpu.TotalMilliseconds / Math.Max(1, best.IlBytes / 1024.0):F2} ms per KiB IL)");
        return 0;
    }
}
