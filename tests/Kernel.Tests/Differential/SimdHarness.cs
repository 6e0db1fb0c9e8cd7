using System.Text;
using Actorvisor.Kernel.Cpu;
using Iced.Intel;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// Differential testing of MMX/SSE/x87 instruction forms: each case runs on the host (state loaded and saved
/// with FXRSTOR64/FXSAVE64 around the instruction) and on our CPU (the same image through
/// <see cref="SoftwareCpu.FxRestoreImage"/>/<see cref="SoftwareCpu.FxSaveImage"/>), and compares the GPRs,
/// RFLAGS' arithmetic bits, the scratch buffer and the FXSAVE image: FCW, FSW, abridged FTW, MXCSR, the
/// 80 bits of each ST(i) and all sixteen XMM registers. FOP/FIP/FDP are not compared (AMD saves them only
/// while an exception is pending), nor MXCSR_MASK (the host's own).
/// </summary>
internal sealed class SimdHarness : IDisposable
{
    private static readonly int MaxReported = int.TryParse(Environment.GetEnvironmentVariable("DIFF_REPORT"), out var n) ? n : 12;

    public NativeExecutor Native { get; }
    public EmulatedExecutor Emu { get; } = new();
    public Random Rng { get; }
    public int Cases { get; private set; }
    public int Failures { get; private set; }
    public byte[] Buffer { get; } = new byte[NativeExecutor.BufferSize];
    public byte[] Fx { get; } = new byte[512];
    /// <summary>Buffer ranges (offset, length) not compared in the next cases.</summary>
    public List<(int Offset, int Length)> IgnoreMemory { get; } = new();

    private readonly StringBuilder _report = new();
    private readonly byte[] _native = new byte[NativeExecutor.BufferSize];
    private readonly byte[] _emu = new byte[NativeExecutor.BufferSize];

    public SimdHarness(int seed)
    {
        Native = NativeExecutor.Instance ?? throw new InvalidOperationException(NativeExecutor.UnavailableReason);
        Rng = new Random(seed);
        Emu.Cpu.Cr4 |= Cr4.OSFXSR | Cr4.OSXMMEXCPT;
    }

    private static readonly ulong[] EdgeQwords =
    [
        0, ulong.MaxValue, 0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8080_8080_8080_8080, 0x7F7F_7F7F_7F7F_7F7F,
        0x8000_8000_8000_8000, 0x7FFF_7FFF_7FFF_7FFF, 0x8000_0000_8000_0000, 0x7FFF_FFFF_7FFF_FFFF, 0x0001_0001_0001_0001,
        0x00FF_00FF_00FF_00FF, 0xFF00_FF00_FF00_FF00, 0x0000_0000_FFFF_FFFF, 0x0102_0304_0506_0708,
    ];

    /// <summary>Fill XMM registers and memory with floating-point edge values of this kind instead of integer patterns.</summary>
    public FloatKind Floats { get; set; }

    public enum FloatKind { None, Single, Double, Extended }

    private static readonly uint[] SingleEdges =
    [
        0, 0x8000_0000, 1, 0x8000_0001, 0x007F_FFFF, 0x0080_0000, 0x8080_0000, 0x3F80_0000, 0xBF80_0000, 0x7F7F_FFFF, 0xFF7F_FFFF,
        0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0x7FA0_1234, 0x3400_0000, 0x4B00_0000, 0x4F00_0000, 0xCF00_0000,
        0x5F00_0000, 0x3F00_0000, 0x3FC0_0000, 0x0000_8000, 0x0040_0000, 0x4040_0000,
    ];

    private static readonly ulong[] DoubleEdges =
    [
        0, 0x8000_0000_0000_0000, 1, 0x800F_FFFF_FFFF_FFFF, 0x0010_0000_0000_0000, 0x3FF0_0000_0000_0000, 0xBFF0_0000_0000_0000,
        0x7FEF_FFFF_FFFF_FFFF, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000, 0x7FF8_0000_0000_0000, 0xFFF8_0000_0000_0000,
        0x7FF0_0000_0000_0001, 0x7FF4_0000_1234_5678, 0x41E0_0000_0000_0000, 0xC1E0_0000_0000_0000, 0x43E0_0000_0000_0000,
        0x3FE0_0000_0000_0000, 0x3FF8_0000_0000_0000, 0x0008_0000_0000_0000, 0x4330_0000_0000_0000, 0x3CA0_0000_0000_0000,
    ];

    private uint SingleValue() => Rng.Next(3) switch
    {
        0 => SingleEdges[Rng.Next(SingleEdges.Length)],
        // Nearby exponents so sums and products round, overflow and underflow in interesting ways.
        1 => (uint)((Rng.Next(2) << 31) | (Rng.Next(2) == 0 ? Rng.Next(0x3E00_0000, 0x4100_0000) : Rng.Next(0x0000_0001, 0x0200_0000)) | Rng.Next(0x100)),
        _ => (uint)Rng.Next() | (uint)(Rng.Next(2) << 31),
    };

    private ulong DoubleValue() => Rng.Next(3) switch
    {
        0 => DoubleEdges[Rng.Next(DoubleEdges.Length)],
        1 => ((ulong)Rng.Next(2) << 63) | (Rng.Next(2) == 0 ? (ulong)Rng.NextInt64(0x3F00_0000_0000_0000, 0x4100_0000_0000_0000) : (ulong)Rng.NextInt64(1, 0x0040_0000_0000_0000)),
        _ => (ulong)Rng.NextInt64() | ((ulong)Rng.Next(2) << 63),
    };

    /// <summary>An 80-bit value: mostly normal numbers near 1 or at the range ends, plus zeros, denormals, infinities, NaNs, unnormals.</summary>
    public (ulong Mant, ushort SignExp) ExtendedValue()
    {
        var sign = (ushort)(Rng.Next(2) << 15);
        var mant = (ulong)Rng.NextInt64() | 0x8000_0000_0000_0000;
        if (Rng.Next(3) == 0) mant &= ~((1UL << Rng.Next(64)) - 1);
        return Rng.Next(16) switch
        {
            0 => (0, sign),
            1 => (mant >> Rng.Next(1, 64), sign),                       // denormal
            2 => (0x8000_0000_0000_0000, (ushort)(sign | 0x7FFF)),      // infinity
            3 => (mant | 0x4000_0000_0000_0000, (ushort)(sign | 0x7FFF)), // QNaN
            4 => ((mant & ~0x4000_0000_0000_0000UL) | 1, (ushort)(sign | 0x7FFF)), // SNaN
            5 => (mant, (ushort)(sign | Rng.Next(1, 64))),              // tiny
            6 => (mant, (ushort)(sign | (0x7FFE - Rng.Next(64)))),      // huge
            7 => (mant, (ushort)(sign | (0x3FFF + Rng.Next(62)))),      // integers and large values for FIST
            8 => (1UL << Rng.Next(63), (ushort)(sign | 0x3FFF)),        // unnormal
            _ => (mant, (ushort)(sign | (0x3FFF + Rng.Next(-40, 40)))),
        };
    }

    /// <summary>A random 64-bit pattern, often built from edge lanes (saturation and sign boundaries).</summary>
    public ulong Pattern()
    {
        if (Floats == FloatKind.Extended && Rng.Next(8) != 0)
            return Rng.Next(3) switch { 0 => SingleValue() | ((ulong)SingleValue() << 32), 1 => DoubleValue(), _ => ExtendedValue().Mant };
        if (Floats == FloatKind.Single && Rng.Next(8) != 0) return SingleValue() | ((ulong)SingleValue() << 32);
        if (Floats == FloatKind.Double && Rng.Next(8) != 0) return DoubleValue();
        switch (Rng.Next(5))
        {
            case 4: return (ulong)Rng.Next(70); // small: shift counts, lane-boundary values
            case 0: return EdgeQwords[Rng.Next(EdgeQwords.Length)];
            case 1:
                ulong v = 0;
                for (var k = 0; k < 8; k++)
                {
                    var b = Rng.Next(6) switch { 0 => 0x00, 1 => 0xFF, 2 => 0x80, 3 => 0x7F, 4 => 0x01, _ => Rng.Next(256) };
                    v |= (ulong)b << (8 * k);
                }
                return v;
            default: return (ulong)Rng.NextInt64() ^ ((ulong)Rng.Next() << 40);
        }
    }

    /// <summary>
    /// A random FXSAVE64 image for the next case: every exception masked, no exception flags that could be
    /// pending, random TOP/condition codes, tags, MXCSR flags/RC/DAZ/FTZ, ST registers and XMM registers.
    /// </summary>
    public void NewState()
    {
        Array.Clear(Fx);
        Rng.NextBytes(Buffer);
        for (var k = 0; k < 64; k++) BitConverter.TryWriteBytes(Buffer.AsSpan(Rng.Next(BufferSize / 8) * 8), Pattern());
        BitConverter.TryWriteBytes(Fx.AsSpan(0), (ushort)0x37F);
        var fsw = (ushort)((Rng.Next(8) << 11) | (Rng.Next(16) is var cc ? ((cc & 7) << 8) | ((cc & 8) << 11) : 0));
        BitConverter.TryWriteBytes(Fx.AsSpan(2), fsw);
        Fx[4] = (byte)Rng.Next(256);
        var mxcsr = 0x1F80u | (uint)Rng.Next(64) | ((uint)Rng.Next(4) << 13) | (Rng.Next(2) == 0 ? 0x40u : 0) | (Rng.Next(2) == 0 ? 0x8000u : 0);
        BitConverter.TryWriteBytes(Fx.AsSpan(24), mxcsr);
        for (var k = 0; k < 8; k++)
        {
            var (m, e) = Floats == FloatKind.Extended ? ExtendedValue() : (Pattern(), (ushort)Rng.Next(65536));
            BitConverter.TryWriteBytes(Fx.AsSpan(32 + 16 * k), m);
            BitConverter.TryWriteBytes(Fx.AsSpan(40 + 16 * k), e);
        }
        if (Floats == FloatKind.Extended)
        {
            // All exceptions masked; random precision and rounding control.
            BitConverter.TryWriteBytes(Fx.AsSpan(0), (ushort)(0x7F | (new[] { 0, 2, 3, 3 }[Rng.Next(4)] << 8) | (Rng.Next(4) << 10)));
        }
        for (var k = 0; k < 32; k++) BitConverter.TryWriteBytes(Fx.AsSpan(160 + 8 * k), Pattern());
    }

    private const int BufferSize = NativeExecutor.BufferSize;

    public ulong[] RandomRegs()
    {
        var r = new ulong[16];
        for (var k = 0; k < 16; k++) r[k] = Pattern();
        return r;
    }

    public void Check(byte[] code, ulong[] regs, ulong flags = 0x8D5)
    {
        Cases++;
        Buffer.CopyTo(_native, 0);
        Buffer.CopyTo(_emu, 0);
        var nfx = new byte[512];
        var efx = new byte[512];
        var n = Native.RunSimd64(code, regs, flags, _native, Fx, nfx);
        Emu.Cpu.FxRestoreImage(Fx, rexW: true, is64: true);
        var e = Emu.Run(code, regs, flags, _emu);
        Emu.Cpu.FxSaveImage(efx, rexW: true, is64: true);
        var sb = new StringBuilder();
        if (e.Fault is { } f) sb.Append($" emulator raised {f.Message};");
        for (var r = 0; r < 16; r++)
            if (r != Gpr.RSP && n.Regs[r] != e.Regs[r]) sb.Append($" {DiffHarness.RegName(r)}: host {n.Regs[r]:x} ours {e.Regs[r]:x};");
        const ulong compared = DiffHarness.AllArith | RFlags.DF;
        if (((n.Flags ^ e.Flags) & compared) != 0)
            sb.Append($" flags: host {DiffHarness.FlagText(n.Flags)} ours {DiffHarness.FlagText(e.Flags)};");
        foreach (var (at, len) in IgnoreMemory) _native.AsSpan(at, len).CopyTo(_emu.AsSpan(at, len));
        var mismatch = _native.AsSpan().CommonPrefixLength(_emu);
        if (mismatch < _native.Length) sb.Append($" memory at +0x{mismatch:x}: host {_native[mismatch]:x2} ours {_emu[mismatch]:x2};");
        CompareImage(nfx, efx, sb);
        if (sb.Length == 0) return;
        Failures++;
        if (Failures > MaxReported) return;
        _report.AppendLine($"{DiffHarness.Disassemble(code)} [{Convert.ToHexString(code)}] fcw {BitConverter.ToUInt16(Fx, 0):x4} mxcsr {BitConverter.ToUInt32(Fx, 24):x4} =>{sb}");
    }

    private static void CompareImage(byte[] h, byte[] o, StringBuilder sb)
    {
        void Field(string name, int at, int len)
        {
            if (!h.AsSpan(at, len).SequenceEqual(o.AsSpan(at, len)))
                sb.Append($" {name}: host {Convert.ToHexString(h, at, len)} ours {Convert.ToHexString(o, at, len)};");
        }
        Field("fcw", 0, 2);
        Field("fsw", 2, 2);
        Field("ftw", 4, 1);
        Field("mxcsr", 24, 4);
        for (var k = 0; k < 8; k++) Field($"st{k}", 32 + 16 * k, 10);
        for (var k = 0; k < 16; k++) Field($"xmm{k}", 160 + 16 * k, 16);
    }

    public void AssertClean(int minCases = 1)
    {
        Assert.True(Cases >= minCases, $"only {Cases} cases ran");
        Assert.True(Failures == 0, $"{Failures} of {Cases} cases differ from the host:\n{_report}");
    }

    public void Dispose() => Emu.Dispose();

    // ---- forms ----

    /// <summary>Legacy MMX/SSE/SSE2 encodings (no later extension) of the mnemonics, valid in 64-bit mode.</summary>
    public static IEnumerable<Code> BaselineCodes(params Mnemonic[] mnemonics) =>
        Forms.CodesOf(mnemonics).Where(c => c.CpuidFeatures().All(f => f is CpuidFeature.MMX or CpuidFeature.SSE or CpuidFeature.SSE2));

    /// <summary>
    /// Builds one random instance of <paramref name="code"/>: XMM/MM/GPR operands chosen at random (never RSP
    /// or the memory base), a memory operand [base + disp] into the buffer (16-byte aligned for 16-byte
    /// operands unless <paramref name="misalign"/>), a random imm8. Sets the base register in
    /// <paramref name="regs"/>. Null when the code has no form of the requested kind.
    /// </summary>
    public byte[]? Build(Code code, ulong[] regs, bool memory, bool misalign = false)
    {
        var oc = code.ToOpCode();
        var baseReg = 5 + Rng.Next(11);
        var usedGpr = new HashSet<int> { 4, baseReg };
        var ops = new List<object>();
        var hasMem = false;
        int imm = Rng.Next(4) == 0 ? Rng.Next(-8, 24) & 0xFF : Rng.Next(256);
        for (var n = 0; n < oc.OpCount; n++)
        {
            var k = oc.GetOpKind(n);
            switch (k)
            {
                case OpCodeOperandKind.xmm_reg or OpCodeOperandKind.xmm_rm:
                    ops.Add(Register.XMM0 + Rng.Next(16)); break;
                case OpCodeOperandKind.mm_reg or OpCodeOperandKind.mm_rm:
                    ops.Add(Register.MM0 + Rng.Next(8)); break;
                case OpCodeOperandKind.xmm_or_mem:
                    if (memory) { ops.Add("m"); hasMem = true; } else ops.Add(Register.XMM0 + Rng.Next(16));
                    break;
                case OpCodeOperandKind.mm_or_mem:
                    if (memory) { ops.Add("m"); hasMem = true; } else ops.Add(Register.MM0 + Rng.Next(8));
                    break;
                case OpCodeOperandKind.mem:
                    if (!memory) return null;
                    ops.Add("m"); hasMem = true; break;
                case OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r64_or_mem when memory:
                    ops.Add("m"); hasMem = true; break;
                case OpCodeOperandKind.r32_reg or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r32_or_mem:
                    ops.Add(Register.EAX + PickGpr(usedGpr)); break;
                case OpCodeOperandKind.r64_reg or OpCodeOperandKind.r64_rm or OpCodeOperandKind.r64_or_mem:
                    ops.Add(Register.RAX + PickGpr(usedGpr)); break;
                case OpCodeOperandKind.st0:
                    ops.Add(Register.ST0); break;
                case OpCodeOperandKind.ax:
                    ops.Add(Register.AX); break;
                case OpCodeOperandKind.sti_opcode:
                    ops.Add(Register.ST0 + Rng.Next(8)); break;
                case OpCodeOperandKind.imm8:
                    ops.Add(imm); break;
                default:
                    return null;
            }
        }
        if (memory && !hasMem) return null;
        var memSize = hasMem ? MemorySizeOf(code) : 0;
        var disp = Rng.Next(-64, 64) & ~15;
        var addr = NativeExecutor.BufferAddr + 0x1000 + (ulong)Rng.Next(0x100) * 16;
        if ((memSize != 16 && memSize != 512) || misalign) addr += (ulong)Rng.Next(16);
        regs[baseReg] = addr - (ulong)(long)disp;
        LastAddress = addr;
        var mem = new MemoryOperand(Register.RAX + baseReg, disp, disp == 0 ? 0 : 1);
        Instruction i;
        try
        {
            i = ops.Count switch
            {
                0 => Instruction.Create(code),
                1 => ops[0] is string ? Instruction.Create(code, mem) : Instruction.Create(code, (Register)ops[0]),
                2 => (ops[0], ops[1]) switch
                {
                    (Register a, Register b) => Instruction.Create(code, a, b),
                    (Register a, string) => Instruction.Create(code, a, mem),
                    (string, Register b) => Instruction.Create(code, mem, b),
                    (Register a, int b) => Instruction.Create(code, a, b),
                    _ => throw new NotSupportedException(),
                },
                3 => (ops[0], ops[1], ops[2]) switch
                {
                    (Register a, Register b, int c) => Instruction.Create(code, a, b, c),
                    (Register a, string, int c) => Instruction.Create(code, a, mem, c),
                    _ => throw new NotSupportedException(),
                },
                _ => throw new NotSupportedException(),
            };
        }
        catch (NotSupportedException) { return null; }
        return Forms.CanEncode(i) ? Forms.Encode(i) : null;
    }

    /// <summary>The memory operand's address in the last form built.</summary>
    public ulong LastAddress { get; private set; }

    private static int MemorySizeOf(Code code)
    {
        // Iced knows the memory size of the form; encode a dummy to ask it.
        var oc = code.ToOpCode();
        return oc.MemorySize.GetSize();
    }

    private int PickGpr(HashSet<int> used)
    {
        while (true)
        {
            var r = Rng.Next(16);
            if (used.Add(r)) return r;
        }
    }

    /// <summary>Runs <paramref name="perForm"/> register and memory cases of every code.</summary>
    public void RunCodes(IEnumerable<Code> codes, int perForm)
    {
        foreach (var code in codes)
            foreach (var memory in new[] { false, true })
                for (var k = 0; k < perForm; k++)
                {
                    NewState();
                    var regs = RandomRegs();
                    var bytes = Build(code, regs, memory);
                    if (bytes == null) break;
                    Check(bytes, regs);
                }
    }
}
