using System.Diagnostics;
using System.Runtime.CompilerServices;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// The run loop: fetch a block, run its instructions, and between blocks take kicks, NMIs and interrupts
/// (SDM Vol. 3A, 6.9: exceptions first, then NMI, then maskable interrupts; bhyve does the same).
/// A fault in an instruction rolls RIP back to it and is delivered through the IDT.
/// </summary>
public sealed unsafe partial class SoftwareCpu
{
    /// <summary>The instruction being executed (for fault reporting and handlers that need their own IP).</summary>
    internal ulong CurrentIp;

    /// <summary>Unimplemented instructions seen, by code (they raise #UD).</summary>
    public readonly Dictionary<Code, long> Unimplemented = new();

    /// <summary>The last unimplemented instruction, formatted, for error reports.</summary>
    public string? LastUnimplemented { get; private set; }

    /// <summary>Called for an instruction without a handler: counts it and raises #UD.</summary>
    internal void OnUnimplemented(in Instruction i)
    {
        Unimplemented[i.Code] = Unimplemented.GetValueOrDefault(i.Code) + 1;
        LastUnimplemented = $"{i.Code} at {Segs[Seg.CS].Selector:x}:{CurrentIp:x}";
        throw CpuFault.InvalidOpcode();
    }

    /// <summary>Runs until the budget is used, the CPU halts, someone kicks it, or it shuts down.</summary>
    public CpuExitReason Run(long maxInstructions = long.MaxValue)
    {
        var limit = maxInstructions == long.MaxValue ? long.MaxValue : InstructionCount + maxInstructions;
        while (true)
        {
            if (_kick != 0)
            {
                _kick = 0;
                return CpuExitReason.Kicked;
            }
            if (!InterruptShadow)
            {
                if (NmiPending && !NmiBlocked)
                {
                    NmiPending = false;
                    Halted = false;
                    if (!DeliverSafely(Vectors.NMI, EventKind.Nmi, null)) return CpuExitReason.Shutdown;
                }
                else if (InterruptDeliverable())
                {
                    var v = Interrupts.AcknowledgeInterrupt();
                    if (v >= 0)
                    {
                        Halted = false;
                        if (!DeliverSafely(v, EventKind.External, null)) return CpuExitReason.Shutdown;
                    }
                }
            }
            if (Halted) return CpuExitReason.Halted;
            if (InstructionCount >= limit) return CpuExitReason.InstructionLimit;

            try
            {
                ExecuteBlock(limit);
            }
            catch (CpuFault f)
            {
                Rip = CurrentIp;
                EndBlock = false;
                if (!DeliverSafely(f.Vector, EventKind.Fault, f.ErrorCode, f.Address)) return CpuExitReason.Shutdown;
            }
            catch (TripleFaultException e)
            {
                // INT n delivers from inside its handler, so a shutdown can surface here too.
                ShutdownReason = e.Message;
                return CpuExitReason.Shutdown;
            }
        }
    }

    // Kept out of Run so it is compiled as an ordinary hot method rather than an on-stack-replacement
    // variant of Run, which is entered only a few times per boot.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ExecuteBlock(long limit)
    {
        var shadow = InterruptShadow;
        InterruptShadow = false;
        // A fault while fetching belongs to the instruction at RIP, not to the one that branched here.
        CurrentIp = Rip;
        var block = GetBlock();
        var n = block.Count;
        // With an interrupt shadow pending (after STI or MOV SS), run exactly one instruction.
        if (shadow) n = 1;
        if (limit - InstructionCount < n) n = (int)Math.Max(1, limit - InstructionCount);
        else if (!shadow)
        {
            RunLimit = limit;
            RunBlocks(block, CompiledFor(block), limit);
            return;
        }
        Interpret(block, n);
    }

    /// <summary>Runs the first <paramref name="n"/> instructions of a block through their handlers.</summary>
    private void Interpret(CodeBlock block, int n)
    {
        var instrs = block.Instructions;
        var handlers = block.Handlers;
        var mask = IpMask;
        EndBlock = false;
        for (var k = 0; k < n; k++)
        {
            ref readonly var instr = ref instrs[k];
            CurrentIp = Rip;
            var next = instr.NextIP & mask;
            Rip = next;
            handlers[k](this, in instr);
            InstructionCount++;
            // A block is decoded straight through; if a handler moved RIP (a taken branch) the rest is not ours.
            if (EndBlock || Rip != next) break;
        }
    }

    /// <summary>
    /// Blocks run this many times by the interpreter are translated to .NET code (<see cref="Jit.BlockCompiler"/>);
    /// negative: never. Environment: ACTORVISOR_COMPILE_THRESHOLD ("off" or a count).
    /// </summary>
    public int CompileThreshold { get; set; } = DefaultCompileThreshold;

    /// <summary>
    /// Compile on the vCPU's own thread, at once (tests that must run the compiled code), instead of on the
    /// background compiler. Environment: ACTORVISOR_COMPILE_SYNC=1.
    /// </summary>
    public bool CompileSynchronously { get; set; } = Environment.GetEnvironmentVariable("ACTORVISOR_COMPILE_SYNC") == "1";

    public static readonly int DefaultCompileThreshold = ParseThreshold(Environment.GetEnvironmentVariable("ACTORVISOR_COMPILE_THRESHOLD"));

    // A block costs the .NET JIT about 0.8 ms to compile (on the compiler thread; `actorvisor-bench jit`), so only
    // blocks hot enough to repay that are compiled. On a Linux boot to /init, 5,000, 3,000 and 2,000 runs left
    // 119 M, 104 M and 95 M instructions to the interpreter, the rest waiting longer for the compiler as it got
    // busier. In alternated boots 2,500 beat 5,000 in 4 of 6 (medians 7.95 and 8.25 s) and then lost on medians
    // in the next 6 (9.61 and 8.45 s) on a busier machine, where the compiler thread competes for the second
    // core: 5,000 stays until a measurement can tell them apart.
    private const int StandardThreshold = 5_000;

    private static int ParseThreshold(string? s) =>
        s is null ? StandardThreshold : s == "off" ? -1 : int.TryParse(s, out var n) ? n : StandardThreshold;

    /// <summary>Blocks the background compiler translated in this process (for --stats).</summary>
    public static long BlocksCompiledInProcess => Jit.CompileQueue.Compiled;

    /// <summary>Blocks this CPU compiled itself (<see cref="CompileSynchronously"/>) or handed to the compiler thread.</summary>
    public long BlocksSentToCompiler { get; private set; }

    /// <summary>The block's compiled code once there is some; asks for it when the block turns hot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Jit.CompiledCode? CompiledFor(CodeBlock block)
    {
        var code = block.Compiled;
        if (code is not null) return code;
        var threshold = CompileThreshold;
        if (threshold < 0 || !block.Cacheable || block.Runs++ != threshold) return null;
        return RequestCompile(block);
    }

    private Jit.CompiledCode? RequestCompile(CodeBlock block)
    {
        BlocksSentToCompiler++;
        block.Region = FormRegion(block);
        if (CompileSynchronously) return block.Compiled = Jit.BlockCompiler.Compile(block);
        if (!Jit.CompileQueue.Request(block)) block.Runs = 0;
        return null;
    }

    /// <summary>Most blocks a region holds.</summary>
    private const int MaxRegionBlocks = 8;

    /// <summary>
    /// The blocks to compile with <paramref name="head"/> into one method, so that a loop over several blocks
    /// runs inside the compiled code: of the blocks its links lead to by constant branches or falling through,
    /// transitively, that are in the same page, decoded from the same code version, valid now (the links'
    /// epochs are current) and hot themselves (run at least a quarter of the threshold), those on a path back
    /// to the head. Null when there are none. Blocks that do not lead back are left out: a bigger method costs
    /// the .NET JIT more, and with every successor taken (measured on a Linux boot) fewer blocks were compiled
    /// in time and the boot was no faster. Run on the vCPU's thread, which owns the links.
    /// </summary>
    internal CodeBlock[]? FormRegion(CodeBlock head)
    {
        var candidates = RegionCandidates(head);
        if (candidates is null) return null;
        // Keep the blocks from which the head is reached (within the candidates): the loop.
        var back = new bool[candidates.Count];
        for (var changed = true; changed;)
        {
            changed = false;
            for (var m = 1; m < candidates.Count; m++)
            {
                if (back[m]) continue;
                var b = candidates[m];
                foreach (var s in new[] { b.FallThrough.Block, b.Other.Block })
                {
                    var t = s is null ? -1 : candidates.IndexOf(s);
                    if (t < 0 || !ConstantSuccessor(b, s!.StartRip) || (t != 0 && !back[t])) continue;
                    back[m] = changed = true;
                    break;
                }
            }
        }
        List<CodeBlock>? loop = null;
        for (var m = 1; m < candidates.Count; m++)
            if (back[m]) (loop ??= [head]).Add(candidates[m]);
        return loop?.ToArray();
    }

    private List<CodeBlock>? RegionCandidates(CodeBlock head)
    {
        List<CodeBlock>? region = null;
        var codeEpoch = Memory.CodeEpoch;
        var hot = Math.Max(1, CompileThreshold / 4);
        for (var q = 0; q < (region?.Count ?? 1); q++)
        {
            var b = region is null ? head : region[q];
            for (var which = 0; which < 2; which++)
            {
                ref var link = ref which == 0 ? ref b.FallThrough : ref b.Other;
                var s = link.Block;
                if (s is null || s == head || !TranslationCurrent(link.TranslationEpoch, link.GlobalEpoch) || link.CodeEpoch != codeEpoch) continue;
                if (s.Bitness != 64 || !s.Cacheable || s.Count == 0 || s.PhysPage != head.PhysPage || s.Version != head.Version ||
                    (s.StartRip ^ head.StartRip) >> 12 != 0 || !ConstantSuccessor(b, s.StartRip))
                    continue;
                if (s.Compiled is null && s.Runs < hot) continue;
                region ??= [head];
                if (region.Contains(s) || region.Count >= MaxRegionBlocks) continue;
                region.Add(s);
            }
        }
        return region;
    }

    /// <summary><paramref name="rip"/> is where <paramref name="b"/> goes by falling through or by a branch with a constant target.</summary>
    private static bool ConstantSuccessor(CodeBlock b, ulong rip)
    {
        ref readonly var last = ref b.Instructions[b.Count - 1];
        if (last.IsJccShortOrNear) return last.Op0Kind == OpKind.NearBranch64 && (rip == last.NearBranch64 || rip == b.EndRip);
        if (last.Mnemonic is Mnemonic.Jmp or Mnemonic.Call)
            return last.Op0Kind == OpKind.NearBranch64 && rip == last.NearBranch64;
        // A block cut by length or page falls through; any other control transfer has no constant target here.
        return last.FlowControl == FlowControl.Next && rip == b.EndRip;
    }

    /// <summary>Which block of the region the compiled code ran last (set by region code before it returns).</summary>
    internal int ExitMember;

    /// <summary>
    /// Runs blocks back to back, compiled or interpreted, while nothing needs <see cref="Run"/>'s attention: no kick,
    /// NMI, deliverable interrupt, halt, interrupt shadow, end of the block's straight run (a mode change) or budget
    /// end. The checks are Run's, without a return to it (and its exception frame) per block; the next block comes
    /// from the last one's link when that is still what a lookup would find, else from <see cref="GetBlock"/>.
    /// </summary>
    private void RunBlocks(CodeBlock block, Jit.CompiledCode? code, long limit)
    {
        var memory = Memory;
        while (true)
        {
            if (code is not null)
            {
                var before = InstructionCount;
                CompiledCalls++;
                code(this, block.Instructions);
                CompiledInstructions += InstructionCount - before;
                // Region code may have ended in another of its blocks: the links to follow are that block's.
                if (block.Region is { } region) block = region[ExitMember];
            }
            else
            {
                Interpret(block, block.Count);
            }
            // Asked after every block, as Run asks before every block: an interrupt is then taken at the same
            // instruction whether the blocks before it ran compiled or not, which is what keeps a deterministic
            // run the same when the background compiler finishes a block sooner or later.
            if (_kick != 0 || InterruptShadow || Halted || NmiPending || EndBlock ||
                InterruptDeliverable() ||
                limit - InstructionCount < MaxBlockLength)
            {
                LeaveChain(block);
                return;
            }

            // GetBlock's link check, for the common case of a block leading to the block it led to before: the
            // link is what a lookup would find while neither epoch moved (in 64-bit mode and to 64-bit code, where
            // the CS base does not matter). _lastBlock, a field (a write barrier), is written only when the chain
            // ends, as GetBlock would have left it.
            var rip = Rip;
            ref var link = ref rip == block.EndRip ? ref block.FallThrough : ref block.Other;
            var next = link.Block;
            if (next is not null && next.StartRip == rip && TranslationCurrent(link.TranslationEpoch, link.GlobalEpoch) &&
                link.CodeEpoch == memory.CodeEpoch && Bitness == 64 && next.Bitness == 64)
            {
                block = next;
                code = CompiledFor(next);
                continue;
            }
            LeaveChain(block);
            CurrentIp = rip;
            block = GetBlock();
            code = CompiledFor(block);
        }
    }

    /// <summary>What GetBlock leaves behind for the block that ran last: links are recorded from cacheable blocks only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LeaveChain(CodeBlock block) => _lastBlock = block.Cacheable ? block : null;

    /// <summary>
    /// Nonzero when the interrupt source may have a deliverable interrupt the CPU has not asked about. Sources
    /// that signal their changes (<see cref="IInterruptSource.SignalsChanges"/>, the LAPIC) set it from any
    /// thread; asking clears it first, so a change signalled while the source answers is asked about again.
    /// A LAPIC asked after every block cost 6-8% of a Linux boot's vCPU time.
    /// </summary>
    internal int InterruptHint = 1;
    private bool _interruptsSignalChanges;

    /// <summary>Tells the CPU its interrupt source may now have something to deliver. Any thread.</summary>
    public void NoteInterruptChange() => Volatile.Write(ref InterruptHint, 1);

    /// <summary>IF set and the interrupt source has a deliverable interrupt (asked only when it may have one).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool InterruptDeliverable() => (FlagsRest & RFlags.IF) != 0 && InterruptHint != 0 && AskInterruptSource();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool AskInterruptSource()
    {
        if (_interruptsSignalChanges) Interlocked.Exchange(ref InterruptHint, 0);
        if (!_interrupts.HasPendingInterrupt) return false;
        // Asked again at the next boundary: after this one is taken, others may be pending.
        InterruptHint = 1;
        return true;
    }

    /// <summary>The instruction count a run must stop at; compiled one-block loops check it between iterations.</summary>
    internal long RunLimit;

    /// <summary>Calls of compiled code by the run loop (each runs one block, or several of a region).</summary>
    public long CompiledCalls { get; private set; }

    /// <summary>Instructions run by compiled blocks (the rest ran in <see cref="Interpret"/>), for statistics.</summary>
    public long CompiledInstructions { get; private set; }

    /// <summary>
    /// Executes exactly one instruction at CS:RIP without taking interrupts or delivering faults: a fault
    /// propagates as <see cref="CpuFault"/> with RIP restored. For unit tests of instruction semantics.
    /// </summary>
    public void StepRaw()
    {
        CurrentIp = Rip;
        var block = GetBlock();
        ref readonly var instr = ref block.Instructions[0];
        // As in a block: the instruction after STI or MOV SS consumes the shadow it runs in.
        InterruptShadow = false;
        Rip = instr.NextIP & IpMask;
        try
        {
            block.Handlers[0](this, in instr);
        }
        catch (CpuFault)
        {
            Rip = CurrentIp;
            throw;
        }
        InstructionCount++;
    }

    /// <summary>Delivers an event, turning nested faults into #DF and a fault in #DF into shutdown.</summary>
    private bool DeliverSafely(int vector, EventKind kind, uint? errorCode, ulong address = 0)
    {
        try
        {
            DeliverEvent(vector, kind, errorCode, address);
            return true;
        }
        catch (TripleFaultException e)
        {
            ShutdownReason = e.Message;
            return false;
        }
    }

    /// <summary>Why the CPU shut down (set with <see cref="CpuExitReason.Shutdown"/>).</summary>
    public string? ShutdownReason { get; internal set; }

    /// <summary>Raises an NMI on this CPU (from the LAPIC or the control socket). Safe from any thread via Kick.</summary>
    public void RequestNmi() { NmiPending = true; Kick(); }
}

/// <summary>How an event reaches the IDT: it decides the pushed RIP, privilege checks and error codes.</summary>
public enum EventKind : byte
{
    /// <summary>An exception that faults: RIP points at the faulting instruction.</summary>
    Fault,
    /// <summary>An exception that traps (#DB trap, #OF via INTO, #BP via INT3): RIP points after it.</summary>
    Trap,
    /// <summary>INT n: gate DPL checked against CPL; RIP after the instruction.</summary>
    Software,
    /// <summary>INT3 / INTO: like Software but reported as exceptions (no IOPL check in V86).</summary>
    SoftwareException,
    External,
    Nmi,
}

