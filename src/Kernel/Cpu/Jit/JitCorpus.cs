using System.Diagnostics;
using System.Globalization;
using System.Text;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Jit;

/// <summary>
/// The blocks a run sent to the compiler, written down so that the translation cost can be measured again
/// without a guest: a run with ACTORVISOR_JIT_CORPUS=FILE appends one line per compile request (each region
/// member's start RIP and bytes), and <see cref="CompileAll"/> decodes and compiles them in one thread, where
/// the cost is CPU time rather than the wall time of a background thread sharing the machine with the vCPUs.
/// </summary>
public static class JitCorpus
{
    private static readonly string? Path = Environment.GetEnvironmentVariable("ACTORVISOR_JIT_CORPUS");
    private static readonly object Gate = new();

    /// <summary>Appends the block's region to the corpus file, if one was asked for. Any thread.</summary>
    internal static void Record(CodeBlock head)
    {
        if (Path is null) return;
        lock (Gate) File.AppendAllText(Path, Line(head) + "\n");
    }

    /// <summary>The corpus line of a region: "rip:bytes" (hex) for each member, the head first.</summary>
    internal static string Line(CodeBlock head)
    {
        var line = new StringBuilder();
        foreach (var b in head.Region ?? [head])
        {
            if (line.Length > 0) line.Append(' ');
            line.Append(b.StartRip.ToString("x", CultureInfo.InvariantCulture)).Append(':').Append(Convert.ToHexString(b.Bytes));
        }
        return line.ToString();
    }

    /// <summary>What <see cref="CompileAll"/> measured.</summary>
    public readonly record struct Cost(int Regions, int Compiled, long IlBytes, TimeSpan Cpu);

    /// <summary>
    /// Compiles every region of the corpus at <paramref name="path"/> once and returns the process CPU time
    /// it took (run it once before to warm up the compiler's own code and the .NET JIT).
    /// </summary>
    public static Cost CompileAll(string path)
    {
        var regions = File.ReadAllLines(path).Where(l => l.Length > 0).Select(Parse).ToList();
        var before = Process.GetCurrentProcess().TotalProcessorTime;
        var compiled = 0;
        long il = 0;
        foreach (var region in regions)
        {
            if (BlockCompiler.Compile(region[0], out var bytes) is null) continue;
            compiled++;
            il += bytes;
        }
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - before;
        return new Cost(regions.Count, compiled, il, cpu);
    }

    /// <summary>The region of a corpus line, decoded again (the head's <see cref="CodeBlock.Region"/> set when it has more than one block).</summary>
    internal static CodeBlock[] Parse(string line)
    {
        var members = line.Split(' ').Select(m =>
        {
            var parts = m.Split(':');
            var rip = ulong.Parse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var bytes = Convert.FromHexString(parts[1]);
            var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(bytes), rip);
            var instrs = new List<Instruction>();
            while (decoder.IP < rip + (ulong)bytes.Length) instrs.Add(decoder.Decode());
            return new CodeBlock([.. instrs], instrs.Count, rip, 0, 64, rip >> 12, 0, cacheable: true, key: rip, bytes);
        }).ToArray();
        if (members.Length > 1) members[0].Region = members;
        return members;
    }
}
