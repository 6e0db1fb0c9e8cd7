using System.Threading.Channels;

namespace Actorvisor.Kernel.Cpu.Jit;

/// <summary>
/// Compiles hot blocks on a background thread, so the vCPU keeps interpreting while the .NET JIT works
/// (about a millisecond per block): the block's <see cref="CodeBlock.Compiled"/> appears when ready and
/// the run loop uses it from then on. Which blocks run compiled, and when, does not change what the guest
/// computes, so deterministic runs repeat exactly either way. One thread serves every CPU of the process.
/// </summary>
internal static class CompileQueue
{
    // Bounded: under a burst of new hot code the oldest requests wait rather than memory growing; a block
    // whose request is dropped is retried at its next threshold crossing (its run count restarts).
    private static readonly Channel<CodeBlock> Pending = Channel.CreateBounded<CodeBlock>(
        new BoundedChannelOptions(4096) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });

    private static readonly Lazy<Thread> Worker = new(() =>
    {
        var t = new Thread(Run) { IsBackground = true, Name = "actorvisor-block-compiler", Priority = ThreadPriority.BelowNormal };
        t.Start();
        return t;
    });

    private static long _compiled;

    /// <summary>Blocks the background thread has compiled in this process.</summary>
    public static long Compiled => Interlocked.Read(ref _compiled);

    /// <summary>Asks for <paramref name="block"/> to be compiled; false if the queue is full.</summary>
    public static bool Request(CodeBlock block)
    {
        _ = Worker.Value;
        return Pending.Writer.TryWrite(block);
    }

    private static void Run()
    {
        var reader = Pending.Reader;
        while (true)
        {
            if (!reader.TryRead(out var block))
            {
                reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult();
                continue;
            }
            JitCorpus.Record(block);
            CompiledCode? code;
            try
            {
                code = BlockCompiler.Compile(block);
            }
            catch (Exception e) when (e is InvalidProgramException or NotSupportedException)
            {
                // A translation bug must not take the VM down: the interpreter keeps running this block.
                Console.Error.WriteLine($"actorvisor: block at {block.StartRip:x} not compiled: {e.Message}");
                code = null;
            }
            if (code is null) continue;
            Volatile.Write(ref block.Compiled, code);
            Interlocked.Increment(ref _compiled);
        }
    }
}
