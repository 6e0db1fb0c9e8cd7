using Iced.Intel;

namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// A run of decoded instructions starting at one guest-physical address, ending at a control transfer, a
/// page boundary or <see cref="SoftwareCpu.MaxBlockLength"/>. Each instruction carries its handler, so the
/// run loop does no lookup per instruction. A block is valid while its page's code version is unchanged.
/// </summary>
internal sealed unsafe class CodeBlock
{
    public readonly Instruction[] Instructions;
    public readonly delegate*<SoftwareCpu, in Instruction, void>[] Handlers;
    public readonly int Count;
    public readonly ulong StartRip;
    public readonly ulong CsBase;
    public readonly int Bitness;
    public readonly ulong PhysPage;
    /// <summary>The page's code version the block is valid for; moved on when a write elsewhere in the page left its bytes as they were.</summary>
    public int Version;
    /// <summary>The instruction bytes the block was decoded from (empty when not cacheable).</summary>
    public readonly byte[] Bytes;
    /// <summary>False for a block decoded from MMIO or across a page boundary: used once, never cached.</summary>
    public readonly bool Cacheable;
    /// <summary>Guest-physical start address and bitness, as the cache keys it.</summary>
    public readonly ulong Key;
    /// <summary>RIP just past the last instruction (where the block falls through to).</summary>
    public readonly ulong EndRip;

    /// <summary>
    /// The blocks run after this one last time (falling through, and any other target), with the translation
    /// and code epochs they were found under: while both are unchanged the link is what a lookup would find.
    /// </summary>
    public BlockLink FallThrough, Other;

    /// <summary>The block translated to .NET code once it ran <see cref="SoftwareCpu.CompileThreshold"/> times.</summary>
    public Jit.CompiledCode? Compiled;
    /// <summary>Times run by the interpreter; compiling is tried once, when this reaches the threshold.</summary>
    public int Runs;

    /// <summary>
    /// The blocks compiled together with this one into its <see cref="Compiled"/> code (this block first), set
    /// when it is sent to the compiler; null for a region of this block alone.
    /// </summary>
    public CodeBlock[]? Region;

    public CodeBlock(Instruction[] instrs, int count, ulong startRip, ulong csBase, int bitness, ulong physPage, int version, bool cacheable, ulong key,
        byte[] bytes)
    {
        Bytes = bytes;
        Key = key;
        Instructions = instrs;
        Count = count;
        StartRip = startRip;
        CsBase = csBase;
        Bitness = bitness;
        PhysPage = physPage;
        Version = version;
        Cacheable = cacheable;
        EndRip = count > 0 ? instrs[count - 1].NextIP : startRip;
        Handlers = new delegate*<SoftwareCpu, in Instruction, void>[count];
        for (var i = 0; i < count; i++)
        {
            // The table's handler, or one specialised for this instruction's operand form.
            var h = Dispatch.Handlers[(int)instrs[i].Code];
            h = Cpu.Instructions.MoveForms.Select(in instrs[i], h);
            h = Cpu.Instructions.Alu.SelectForm(in instrs[i], h);
            h = Cpu.Instructions.ConditionForms.Select(in instrs[i], h);
            h = Cpu.Instructions.MulDiv.SelectForm(in instrs[i], h);
            h = Cpu.Instructions.StackForms.Select(in instrs[i], h);
            Handlers[i] = Cpu.Instructions.ExtendForms.Select(in instrs[i], h);
        }
    }
}

/// <summary>
/// A successor of a block, valid while memory's code epoch is unchanged and either the CPU's translation epoch is, or
/// the target's translation was global and the global epoch is unchanged.
/// </summary>
internal struct BlockLink
{
    public CodeBlock? Block;
    public int TranslationEpoch;
    /// <summary>The CPU's global translation epoch when the target's page was translated by a global TLB entry, else <see cref="SoftwareCpu.NotGlobal"/>.</summary>
    public int GlobalEpoch;
    public int CodeEpoch;
}

/// <summary>Feeds Iced from guest memory the CPU already translated.</summary>
internal sealed unsafe class PointerCodeReader : CodeReader
{
    private byte* _p;
    private int _pos, _len;

    public void Reset(byte* p, int len) { _p = p; _pos = 0; _len = len; }
    public int Position => _pos;
    public override int ReadByte() => _pos < _len ? _p[_pos++] : -1;
}

public sealed unsafe partial class SoftwareCpu
{
    public const int MaxBlockLength = 64;

    private readonly Dictionary<ulong, CodeBlock> _blocks = new();
    private const int FastBlockBits = 16;
    private readonly CodeBlock?[] _fastBlocks = new CodeBlock?[1 << FastBlockBits];
    private readonly PointerCodeReader _codeReader = new();
    private Decoder? _decoder16, _decoder32, _decoder64;
    private readonly Instruction[] _scratch = new Instruction[MaxBlockLength];

    /// <summary>Blocks decoded since start (a cache-efficiency counter).</summary>
    public long BlocksDecoded { get; private set; }

    /// <summary>Blocks found by lookup because no link led to them (a cache-efficiency counter).</summary>
    public long BlockLookups { get; private set; }

    public void ClearDecodeCache()
    {
        MoveTranslationEpochs();
        _lastBlock = null;
        _blocks.Clear();
        Array.Clear(_fastBlocks);
        Array.Clear(_jumpCache);
    }

    private Decoder DecoderFor(int bitness) => bitness switch
    {
        64 => _decoder64 ??= Decoder.Create(64, _codeReader, DecoderOptions.None),
        32 => _decoder32 ??= Decoder.Create(32, _codeReader, DecoderOptions.None),
        _ => _decoder16 ??= Decoder.Create(16, _codeReader, DecoderOptions.None),
    };

    /// <summary>The block that ran last (cacheable only), whose links <see cref="GetBlock"/> tries first.</summary>
    private CodeBlock? _lastBlock;

    /// <summary>The block at the current CS:RIP, from the cache or freshly decoded. May throw #PF/#GP.</summary>
    internal CodeBlock GetBlock()
    {
        var bitness = Bitness;
        var csBase = bitness == 64 ? 0 : Segs[Seg.CS].Base;
        if (bitness != 64) CheckCodeLimit(Rip, 1);
        var codeEpoch = Memory.CodeEpoch;

        // Most blocks lead to the one they led to last time: with no TLB flush and no code write since, that
        // block is still what the lookup below would return (a translation may be used until invalidated).
        var prev = _lastBlock;
        var fallThrough = false;
        if (prev is not null)
        {
            fallThrough = Rip == prev.EndRip;
            ref var link = ref fallThrough ? ref prev.FallThrough : ref prev.Other;
            if (Linked(in link, codeEpoch, csBase, bitness)) return _lastBlock = link.Block!;
        }
        // Next, the jump cache: blocks by RIP, for targets a link misses (returns, indirect calls and jumps).
        ref var jump = ref _jumpCache[(int)((Rip ^ (Rip >> JumpCacheBits)) & JumpCacheMask)];
        CodeBlock found;
        var lookedUp = false;
        if (bitness == 64 && jump.Block is { } cached && cached.StartRip == Rip && TranslationCurrent(jump.TranslationEpoch, jump.GlobalEpoch) &&
            jump.CodeEpoch == codeEpoch)
        {
            found = cached;
            JumpCacheHits++;
        }
        else
        {
            BlockLookups++;
            found = LookupBlock(csBase);
            lookedUp = true;
        }
        if (found.Cacheable)
        {
            var globalEpoch = bitness == 64 ? GlobalEpochFor(Rip) : NotGlobal;
            if (lookedUp && bitness == 64)
                jump = new JumpCacheEntry { Block = found, TranslationEpoch = TranslationEpoch, GlobalEpoch = globalEpoch, CodeEpoch = codeEpoch };
            if (prev is not null)
            {
                ref var link = ref fallThrough ? ref prev.FallThrough : ref prev.Other;
                link.Block = found;
                link.TranslationEpoch = TranslationEpoch;
                link.GlobalEpoch = globalEpoch;
                link.CodeEpoch = codeEpoch;
            }
            _lastBlock = found;
        }
        else _lastBlock = null;
        return found;
    }

    /// <summary>
    /// Blocks found by <see cref="LookupBlock"/> in 64-bit mode, direct-mapped by RIP: an entry is what a lookup
    /// would find while the translation and code epochs are as recorded, as for a link. (A switch between user and
    /// supervisor moves the translation epoch, so an entry is never used by the other kind of fetch than the one
    /// whose execute permission its lookup checked.)
    /// </summary>
    private readonly JumpCacheEntry[] _jumpCache = new JumpCacheEntry[1 << JumpCacheBits];
    private const int JumpCacheBits = 12;
    private const int JumpCacheMask = (1 << JumpCacheBits) - 1;

    private struct JumpCacheEntry
    {
        public CodeBlock? Block;
        public int TranslationEpoch;
        public int GlobalEpoch;
        public int CodeEpoch;
    }

    /// <summary>Blocks found in the jump cache when no link led to them (a cache-efficiency counter).</summary>
    public long JumpCacheHits { get; private set; }

    /// <summary>True when a link leads to the block at CS:RIP and is still what a lookup would find.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private bool Linked(in BlockLink link, int codeEpoch, ulong csBase, int bitness)
    {
        var next = link.Block;
        return next is not null && next.StartRip == Rip && TranslationCurrent(link.TranslationEpoch, link.GlobalEpoch) &&
               link.CodeEpoch == codeEpoch && next.CsBase == csBase && next.Bitness == bitness;
    }

    private CodeBlock LookupBlock(ulong csBase)
    {
        var linear = Bitness == 64 ? Rip : (csBase + Rip) & 0xFFFF_FFFF;

        // Translate for execution (the TLB's exec entries carry the host page).
        ulong phys;
        byte* host;
        ref var e = ref TlbX[(int)(linear >> 12) & TlbMask];
        if (e.Tag == (linear & ~0xFFFUL) && e.Host != 0)
        {
            phys = e.PhysPage | (linear & 0xFFF);
            host = (byte*)e.Host + (linear & 0xFFF);
        }
        else
        {
            phys = Translate(linear, AccessKind.Execute, Cpl == 3);
            host = Memory.HostPointer(phys);
        }

        var key = (phys << 2) | (uint)(Bitness >> 5); // 16→0, 32→1, 64→2
        // A direct-mapped array in front of the dictionary: most blocks are found without hashing.
        var slot = (int)((key * 0x9E37_79B9_7F4A_7C15UL) >> (64 - FastBlockBits));
        var block = _fastBlocks[slot];
        if (block is not null && block.Key == key && block.StartRip == Rip && block.CsBase == csBase &&
            block.Version == Memory.CodeVersion(phys >> 12))
            return block;
        if (_blocks.TryGetValue(key, out block) && block.StartRip == Rip && block.CsBase == csBase)
        {
            if (block.Version == Memory.CodeVersion(phys >> 12) || host != null && Revalidate(block, host))
            {
                _fastBlocks[slot] = block;
                return block;
            }
        }

        block = Decode(linear, phys, host, csBase, key);
        if (block.Cacheable)
        {
            _blocks[key] = block;
            _fastBlocks[slot] = block;
        }
        return block;
    }

    /// <summary>
    /// A block whose page was written since it was decoded, but whose own bytes are as they were (Linux patches
    /// jump labels and alternatives into pages of hot code all through its boot): it is valid again for the page's
    /// new version, and keeps its run count and compiled code instead of being decoded, counted and compiled anew.
    /// A block compiled with a region is revalidated only with every block of the region unchanged too, as the
    /// region's code runs them without looking them up.
    /// </summary>
    private bool Revalidate(CodeBlock block, byte* host)
    {
        // Marked first, compared second: a write after the mark moves the version on again (the block goes stale
        // once more); a write before it is in the bytes compared.
        var version = Memory.MarkCode(block.PhysPage);
        var region = block.Region;
        if (region is null)
        {
            if (!SameBytes(block, host)) return false;
            block.Version = version;
            return true;
        }
        var pageStart = host - (block.StartRip & 0xFFF);
        foreach (var member in region)
            if (!SameBytes(member, pageStart + (member.StartRip & 0xFFF))) return false;
        foreach (var member in region) member.Version = version;
        return true;
    }

    private static bool SameBytes(CodeBlock block, byte* host) =>
        block.Bytes.Length != 0 && new ReadOnlySpan<byte>(host, block.Bytes.Length).SequenceEqual(block.Bytes);

    private CodeBlock Decode(ulong linear, ulong phys, byte* host, ulong csBase, ulong key)
    {
        BlocksDecoded++;
        var bitness = Bitness;
        var decoder = DecoderFor(bitness);
        var ppn = phys >> 12;
        var pageLeft = (int)(0x1000 - (phys & 0xFFF));
        var version = host != null ? Memory.MarkCode(ppn) : 0;
        var count = 0;
        var cacheable = host != null;

        if (host != null)
        {
            _codeReader.Reset(host, pageLeft);
            decoder.IP = Rip;
            var consumed = 0;
            while (count < MaxBlockLength)
            {
                decoder.Decode(out _scratch[count]);
                if (decoder.LastError == DecoderError.NoMoreBytes)
                {
                    // The instruction runs into the next page: decode it alone, from both pages.
                    if (count == 0) return DecodeAcrossPages(linear, csBase, bitness);
                    break;
                }
                consumed += _scratch[count].Length;
                var flow = _scratch[count].FlowControl;
                count++;
                if (flow != FlowControl.Next || consumed >= pageLeft) break;
                _codeReader.Reset(host + consumed, pageLeft - consumed);
            }
        }
        else
        {
            // Executing from MMIO (a ROM device): fetch bytes through the platform, one instruction.
            return DecodeAcrossPages(linear, csBase, bitness);
        }

        var instrs = new Instruction[count];
        Array.Copy(_scratch, instrs, count);
        var bytes = new ReadOnlySpan<byte>(host, (int)(instrs[count - 1].NextIP - Rip)).ToArray();
        return new CodeBlock(instrs, count, Rip, csBase, bitness, ppn, version, cacheable, key, bytes);
    }

    /// <summary>Decodes one instruction whose bytes straddle pages (or live in MMIO); not cached.</summary>
    private CodeBlock DecodeAcrossPages(ulong linear, ulong csBase, int bitness)
    {
        Span<byte> bytes = stackalloc byte[15];
        var n = 0;
        for (; n < 15; n++)
        {
            var la = (linear + (ulong)n) & (bitness == 64 ? ulong.MaxValue : 0xFFFF_FFFFUL);
            // Stop at the code-segment limit in legacy modes; fetching beyond a page that faults is only an
            // error if the instruction actually needs those bytes, so fault lazily.
            if (bitness != 64 && Rip + (ulong)n > Segs[Seg.CS].Limit) break;
            try
            {
                var pa = Translate(la, AccessKind.Execute, Cpl == 3);
                bytes[n] = (byte)PhysRead(pa, 1);
            }
            catch (CpuFault) when (n > 0)
            {
                break;
            }
        }
        var reader = new ByteArrayCodeReader(bytes[..n].ToArray());
        var decoder = Decoder.Create(bitness, reader, Rip, DecoderOptions.None);
        decoder.Decode(out var instr);
        if (decoder.LastError == DecoderError.NoMoreBytes)
        {
            // The bytes it needs are on a page that faults (or beyond the limit): raise that fault now.
            var la = (linear + (ulong)n) & (bitness == 64 ? ulong.MaxValue : 0xFFFF_FFFFUL);
            if (bitness != 64 && Rip + (ulong)n > Segs[Seg.CS].Limit) throw CpuFault.General(0);
            Translate(la, AccessKind.Execute, Cpl == 3);
            throw CpuFault.General(0);
        }
        return new CodeBlock([instr], 1, Rip, csBase, bitness, 0, 0, cacheable: false, key: ulong.MaxValue, bytes: []);
    }

    /// <summary>CS limit check for code fetch and branch targets; real mode has a limit too (0xFFFF unless unreal).</summary>
    internal void CheckCodeLimit(ulong offset, int size)
    {
        if (offset + (ulong)size - 1 > Segs[Seg.CS].Limit) throw CpuFault.General(0);
    }
}
