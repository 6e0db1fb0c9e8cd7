using System.Text;
using Actorvisor.Kernel.Cpu;
using Iced.Intel;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>The native executor is one per process: tests that use it never run in parallel.</summary>
[CollectionDefinition("Native", DisableParallelization = true)]
public sealed class NativeCollection;

/// <summary>
/// Runs instruction cases on the host CPU and on our CPU and collects every difference in registers
/// (all but RSP), the flags the instruction defines, and the scratch buffer.
/// </summary>
internal sealed class DiffHarness : IDisposable
{
    public const ulong CF = RFlags.CF, PF = RFlags.PF, AF = RFlags.AF, ZF = RFlags.ZF, SF = RFlags.SF, OF = RFlags.OF;
    public const ulong AllArith = CF | PF | AF | ZF | SF | OF;

    private static readonly int MaxReported = int.TryParse(Environment.GetEnvironmentVariable("DIFF_REPORT"), out var n) ? n : 12;
    private static readonly bool Strict = Environment.GetEnvironmentVariable("DIFF_STRICT") == "1";

    public NativeExecutor Native { get; }
    public EmulatedExecutor Emu { get; } = new();
    public Random Rng { get; }
    public int Cases { get; private set; }
    public int Failures { get; private set; }
    /// <summary>Cases where a flag the SDM leaves undefined differed from the host (informational).</summary>
    public int UndefinedFlagDifferences { get; private set; }

    private readonly StringBuilder _report = new();
    private readonly byte[] _template = new byte[NativeExecutor.BufferSize];
    private readonly byte[] _native = new byte[NativeExecutor.BufferSize];
    private readonly byte[] _emu = new byte[NativeExecutor.BufferSize];

    /// <summary>The buffer contents for the next case; reset from a random template by <see cref="NewCase"/>.</summary>
    public byte[] Buffer { get; } = new byte[NativeExecutor.BufferSize];

    public DiffHarness(int seed)
    {
        Native = NativeExecutor.Instance ?? throw new InvalidOperationException(NativeExecutor.UnavailableReason);
        Rng = new Random(seed);
        Rng.NextBytes(_template);
    }

    /// <summary>Skips the calling test when the host cannot execute x86-64 code natively here.</summary>
    public static void RequireNative() => Skip.If(NativeExecutor.Instance is null, NativeExecutor.UnavailableReason);

    /// <summary>
    /// Where the SDM leaves a result or flag undefined we produce what AMD Zen does (the host these tests
    /// were written on). Tests of those choices run only on an AMD host; Intel differs in places.
    /// </summary>
    public static void RequireAmdHost()
    {
        RequireNative();
        Skip.IfNot(HostIsAmd, "the undefined-behaviour choices are AMD Zen's; this host is not AMD");
    }

    public static bool HostIsAmd
    {
        get
        {
            if (!System.Runtime.Intrinsics.X86.X86Base.IsSupported) return false;
            var (_, ebx, ecx, edx) = System.Runtime.Intrinsics.X86.X86Base.CpuId(0, 0);
            return ebx == 0x68747541 && edx == 0x69746E65 && ecx == 0x444D4163; // "AuthenticAMD"
        }
    }

    /// <summary>Also compare the flags the SDM calls undefined (for the AMD-host tests of our choices).</summary>
    public bool StrictUndefined { get; set; }

    public void NewCase() => _template.CopyTo(Buffer, 0);

    private static readonly ulong[] Edges =
    [
        0, 1, 2, 3, 6, 7, 8, 9, 0xF, 0x10, 0x1F, 0x20, 0x3F, 0x40, 0x7E, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x100,
        0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000, 0x8000_0001, 0xFFFF_FFFF,
        0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0x8000_0000_0000_0001,
        0xFFFF_FFFF_FFFF_FFFE, ulong.MaxValue, 0xFFFF_FFFF_FFFF_FF80, 0xFFFF_FFFF_FFFF_8000, 0xFFFF_FFFF_8000_0000,
        0x99, 0x9A, 0xA0, 0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA,
    ];

    /// <summary>A register or memory value: edge values, small values, or uniformly random 64 bits.</summary>
    public ulong Value()
    {
        var k = Rng.Next(10);
        if (k < 3) return Edges[Rng.Next(Edges.Length)];
        if (k == 3) return (ulong)Rng.Next(0, 256);
        if (k == 4) return (ulong)(long)Rng.Next(-256, 256);
        if (k == 5) return Edges[Rng.Next(Edges.Length)] ^ ((ulong)Rng.NextInt64() << 32);
        return (ulong)Rng.NextInt64() ^ ((ulong)Rng.Next(2) << 63);
    }

    public ulong[] RandomRegs()
    {
        var r = new ulong[16];
        for (var k = 0; k < 16; k++) r[k] = Value();
        return r;
    }

    /// <summary>Random arithmetic flags (DF clear unless <paramref name="withDf"/>).</summary>
    public ulong RandomFlags(bool withDf = false) =>
        ((ulong)Rng.Next(0x1000) & AllArith) | (withDf && Rng.Next(2) == 0 ? RFlags.DF : 0);

    /// <summary>The memory-operand base for a form: somewhere in the middle of the buffer, any alignment.</summary>
    public ulong BaseAddress(int alignment = 1) =>
        (NativeExecutor.BufferAddr + 0x2000 + (ulong)Rng.Next(0, 0x800)) & ~(ulong)(alignment - 1);

    /// <summary>Writes <paramref name="v"/> (little-endian, <paramref name="size"/> bytes) at a linear address in the buffer.</summary>
    public void Poke(ulong address, ulong v, int size)
    {
        var o = (int)(address - NativeExecutor.BufferAddr);
        for (var k = 0; k < size; k++) Buffer[o + k] = (byte)(v >> (8 * k));
    }

    /// <summary>Standard inputs for a form: random registers and flags, the memory operand set up with an edge-biased value.</summary>
    public (ulong[] Regs, ulong Flags) Inputs(Form form, int alignment = 1, int memSize = 8)
    {
        NewCase();
        var regs = RandomRegs();
        if (form.HasMemory)
        {
            regs[form.MemBase] = BaseAddress(alignment);
            Poke(regs[form.MemBase] + (ulong)(long)form.Disp, Value(), memSize);
        }
        return (regs, RandomFlags());
    }

    /// <summary>A random immediate suitable for operand kind <paramref name="k"/> (edge-biased).</summary>
    public long Immediate(OpCodeOperandKind k)
    {
        var v = Value();
        return k switch
        {
            OpCodeOperandKind.imm8 => (byte)v,
            OpCodeOperandKind.imm8sex16 or OpCodeOperandKind.imm8sex32 or OpCodeOperandKind.imm8sex64 => (sbyte)v,
            OpCodeOperandKind.imm16 => (ushort)v,
            OpCodeOperandKind.imm32 => (uint)v,
            OpCodeOperandKind.imm32sex64 => (int)v,
            OpCodeOperandKind.imm64 => (long)v,
            _ => 0,
        };
    }

    /// <summary>The immediate operand kind of a code, if it has one.</summary>
    public static OpCodeOperandKind ImmediateKind(Code code)
    {
        var oc = code.ToOpCode();
        for (var n = 0; n < oc.OpCount; n++)
            if (Forms.IsImmediate(oc.GetOpKind(n))) return oc.GetOpKind(n);
        return OpCodeOperandKind.None;
    }

    /// <summary>
    /// Runs one case on both sides and compares. <paramref name="definedFlags"/> are the arithmetic flags
    /// (and DF) the SDM defines for this case; the others are counted as informational differences only.
    /// </summary>
    public void Check(byte[] code, ulong[] regs, ulong flags, ulong definedFlags, string? text = null)
    {
        Cases++;
        Buffer.CopyTo(_native, 0);
        Buffer.CopyTo(_emu, 0);
        var n = Native.Run64(code, regs, flags, _native);
        var e = Emu.Run(code, regs, flags, _emu);
        var sb = new StringBuilder();
        if (e.Fault is { } f) sb.Append($" emulator raised {f.Message};");
        for (var r = 0; r < 16; r++)
            if (r != Gpr.RSP && n.Regs[r] != e.Regs[r])
                sb.Append($" {RegName(r)}: host {n.Regs[r]:x} ours {e.Regs[r]:x};");
        const ulong compared = AllArith | RFlags.DF;
        var diff = (n.Flags ^ e.Flags) & compared;
        // Strict: the flags the SDM leaves undefined must match the host too (DIFF_STRICT=1 forces it).
        if (Strict || StrictUndefined) definedFlags = compared;
        if ((diff & definedFlags) != 0)
            sb.Append($" flags: host {FlagText(n.Flags)} ours {FlagText(e.Flags)} (defined {FlagText(definedFlags)});");
        else if (diff != 0) UndefinedFlagDifferences++;
        var span1 = _native.AsSpan();
        var mismatch = span1.CommonPrefixLength(_emu);
        if (mismatch < span1.Length)
            sb.Append($" memory at +0x{mismatch:x}: host {_native[mismatch]:x2} ours {_emu[mismatch]:x2};");
        if (sb.Length == 0) return;
        Failures++;
        if (Failures > MaxReported) return;
        _report.Append($"{text ?? Disassemble(code)} [{Convert.ToHexString(code)}] in: flags {FlagText(flags)}");
        for (var r = 0; r < 16; r++)
            if (r != Gpr.RSP) _report.Append($" {RegName(r)}={regs[r]:x}");
        _report.AppendLine();
        _report.AppendLine("   =>" + sb);
    }

    /// <summary>
    /// Runs every form of every code <paramref name="perForm"/> times with random inputs and immediates.
    /// <paramref name="adjust"/> may constrain the inputs of a case (registers, buffer) before it runs.
    /// </summary>
    public void RunForms(IEnumerable<Code> codes, Func<Form, ulong[], ulong> definedFlags, int perForm,
        Action<Form, ulong[]>? adjust = null, bool allowLock = true, int registerVariants = 2)
    {
        foreach (var code in codes)
        foreach (var form in Forms.FormsOf(code, Rng, allowLock, registerVariants))
        {
            var immKind = ImmediateKind(code);
            for (var k = 0; k < perForm; k++)
            {
                var (regs, flags) = Inputs(form);
                adjust?.Invoke(form, regs);
                var bytes = form.Encode(immKind == OpCodeOperandKind.None ? 0 : Immediate(immKind));
                Check(bytes, regs, flags, definedFlags(form, regs));
            }
        }
    }

    /// <summary>Asserts that no case differed; the message lists the first ones.</summary>
    public void AssertClean(int minCases = 1)
    {
        Assert.True(Cases >= minCases, $"only {Cases} cases ran");
        Assert.True(Failures == 0, $"{Failures} of {Cases} cases differ from the host:\n{_report}");
    }

    public static string Disassemble(byte[] code, int bitness = 64)
    {
        var d = Iced.Intel.Decoder.Create(bitness, new ByteArrayCodeReader(code), NativeExecutor.TestAddr);
        d.Decode(out var i);
        return Forms.Format(i);
    }

    private static readonly string[] Names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
    public static string RegName(int r) => Names[r];

    public static string FlagText(ulong f)
    {
        var sb = new StringBuilder();
        foreach (var (bit, name) in new[] { (OF, "O"), (RFlags.DF, "D"), (SF, "S"), (ZF, "Z"), (AF, "A"), (PF, "P"), (CF, "C") })
            sb.Append((f & bit) != 0 ? name : "-");
        return sb.ToString();
    }

    public void Dispose() => Emu.Dispose();
}
