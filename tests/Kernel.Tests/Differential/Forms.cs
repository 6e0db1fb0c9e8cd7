using Iced.Intel;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// One instruction form under test: the Iced code with its operands chosen (registers by index, or a memory
/// operand [base + disp]), from which instances with different immediates are encoded.
/// </summary>
internal sealed class Form
{
    public required Code Code { get; init; }
    /// <summary>Register index (0..15) for each register operand, in operand order; -1 for non-register operands.</summary>
    public required int[] RegIndex { get; init; }
    /// <summary>Use AH/CH/DH/BH for 8-bit register operands with index 0..3.</summary>
    public bool HighByte { get; init; }
    /// <summary>Base register index of the memory operand, or -1 for a register-only form.</summary>
    public int MemBase { get; init; } = -1;
    public int Disp { get; init; }
    public bool Lock { get; init; }

    public OpCodeInfo OpCode => Code.ToOpCode();
    public bool HasMemory => MemBase >= 0;

    /// <summary>Operand size in bytes of operand 0 (the destination for most forms).</summary>
    public int Size => Forms.OperandSize(OpCode.GetOpKind(0));

    public Instruction Build(long imm = 0)
    {
        var oc = OpCode;
        var regs = new List<Register>();
        MemoryOperand? mem = null;
        var memPos = -1;
        long? immediate = null;
        var order = new List<char>();
        for (var n = 0; n < oc.OpCount; n++)
        {
            var k = oc.GetOpKind(n);
            if (Forms.IsImmediate(k))
            {
                immediate = k == OpCodeOperandKind.imm8_const_1 ? 1 : imm;
                order.Add('i');
            }
            else if (Forms.IsMemoryOnly(k) || (Forms.IsRegOrMem(k) && HasMemory))
            {
                mem = new MemoryOperand(Forms.Reg64(MemBase), Disp, Disp == 0 ? 0 : 1);
                memPos = n;
                order.Add('m');
            }
            else
            {
                regs.Add(Forms.RegisterFor(k, RegIndex[n], HighByte));
                order.Add('r');
            }
        }
        var shape = new string(order.ToArray());
        var m = mem.GetValueOrDefault();
        var i = shape switch
        {
            "" => Instruction.Create(Code),
            "r" => Instruction.Create(Code, regs[0]),
            "m" => Instruction.Create(Code, m),
            "rr" => Instruction.Create(Code, regs[0], regs[1]),
            "rm" => Instruction.Create(Code, regs[0], m),
            "mr" => Instruction.Create(Code, m, regs[0]),
            "ri" when oc.GetOpKind(1) == OpCodeOperandKind.imm64 => Instruction.Create(Code, regs[0], (ulong)immediate!.Value),
            "ri" => Instruction.Create(Code, regs[0], (int)immediate!.Value),
            "mi" => Instruction.Create(Code, m, (int)immediate!.Value),
            "rri" => Instruction.Create(Code, regs[0], regs[1], (int)immediate!.Value),
            "rmi" => Instruction.Create(Code, regs[0], m, (int)immediate!.Value),
            "mri" => Instruction.Create(Code, m, regs[0], (int)immediate!.Value),
            "rrr" => Instruction.Create(Code, regs[0], regs[1], regs[2]),
            "mrr" => Instruction.Create(Code, m, regs[0], regs[1]),
            _ => throw new NotSupportedException($"operand shape {shape} of {Code}"),
        };
        if (Lock) i.HasLockPrefix = true;
        return i;
    }

    public byte[] Encode(long imm = 0, ulong ip = NativeExecutor.TestAddr) => Forms.Encode(Build(imm), ip);

    public override string ToString() => Forms.Format(Build(0));
}

internal static class Forms
{
    private static readonly Formatter Fmt = new IntelFormatter();

    public static string Format(in Instruction i)
    {
        var o = new StringOutput();
        Fmt.Format(i, o);
        return o.ToStringAndReset();
    }

    public static byte[] Encode(in Instruction i, ulong ip = NativeExecutor.TestAddr, int bitness = 64)
    {
        var w = new CodeWriterImpl();
        var e = Encoder.Create(bitness, w);
        if (!e.TryEncode(i, ip, out _, out var error)) throw new InvalidOperationException($"{i.Code}: {error}");
        return w.ToArray();
    }

    /// <summary>True if Iced can encode the instruction (e.g. no AH together with a REX prefix).</summary>
    public static bool CanEncode(in Instruction i, int bitness = 64) =>
        Encoder.Create(bitness, new CodeWriterImpl()).TryEncode(i, NativeExecutor.TestAddr, out _, out _);

    public static Register Reg64(int index) => Register.RAX + index;

    public static Register RegisterFor(OpCodeOperandKind k, int index, bool highByte)
    {
        switch (k)
        {
            case OpCodeOperandKind.al: return Register.AL;
            case OpCodeOperandKind.cl: return Register.CL;
            case OpCodeOperandKind.ax: return Register.AX;
            case OpCodeOperandKind.dx: return Register.DX;
            case OpCodeOperandKind.eax: return Register.EAX;
            case OpCodeOperandKind.rax: return Register.RAX;
        }
        return OperandSize(k) switch
        {
            1 when highByte && index < 4 => Register.AH + index,
            1 => index < 4 ? Register.AL + index : index < 8 ? Register.SPL + (index - 4) : Register.R8L + (index - 8),
            2 => Register.AX + index,
            4 => Register.EAX + index,
            _ => Register.RAX + index,
        };
    }

    public static bool IsImmediate(OpCodeOperandKind k) => k is OpCodeOperandKind.imm8 or OpCodeOperandKind.imm8_const_1 or
        OpCodeOperandKind.imm8sex16 or OpCodeOperandKind.imm8sex32 or OpCodeOperandKind.imm8sex64 or OpCodeOperandKind.imm16 or
        OpCodeOperandKind.imm32 or OpCodeOperandKind.imm32sex64 or OpCodeOperandKind.imm64;

    public static bool IsRegOrMem(OpCodeOperandKind k) => k is OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r16_or_mem or
        OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r64_or_mem;

    public static bool IsMemoryOnly(OpCodeOperandKind k) => k == OpCodeOperandKind.mem;

    /// <summary>True if the operand is a register chosen by the test (not fixed by the opcode, not memory, not immediate).</summary>
    public static bool IsFreeRegister(OpCodeOperandKind k, bool memoryForm) =>
        k is OpCodeOperandKind.r8_reg or OpCodeOperandKind.r16_reg or OpCodeOperandKind.r32_reg or OpCodeOperandKind.r64_reg or
            OpCodeOperandKind.r8_opcode or OpCodeOperandKind.r16_opcode or OpCodeOperandKind.r32_opcode or OpCodeOperandKind.r64_opcode or
            OpCodeOperandKind.r16_rm or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r64_rm ||
        (IsRegOrMem(k) && !memoryForm);

    public static int OperandSize(OpCodeOperandKind k) => k switch
    {
        OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r8_reg or OpCodeOperandKind.r8_opcode or OpCodeOperandKind.al or
            OpCodeOperandKind.cl or OpCodeOperandKind.imm8 => 1,
        OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r16_reg or OpCodeOperandKind.r16_opcode or OpCodeOperandKind.r16_rm or
            OpCodeOperandKind.ax or OpCodeOperandKind.dx or OpCodeOperandKind.imm16 or OpCodeOperandKind.imm8sex16 => 2,
        OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r32_reg or OpCodeOperandKind.r32_opcode or OpCodeOperandKind.r32_rm or
            OpCodeOperandKind.eax or OpCodeOperandKind.imm32 or OpCodeOperandKind.imm8sex32 => 4,
        OpCodeOperandKind.mem => 0,
        _ => 8,
    };

    /// <summary>Every legacy-encoded code of the mnemonics that is valid in 64-bit mode.</summary>
    public static IEnumerable<Code> CodesOf(params Mnemonic[] mnemonics)
    {
        var set = new HashSet<Mnemonic>(mnemonics);
        foreach (var c in Enum.GetValues<Code>())
        {
            if (c == Code.INVALID || !set.Contains(c.Mnemonic())) continue;
            var oc = c.ToOpCode();
            if (oc.Encoding != EncodingKind.Legacy || !oc.Mode64) continue;
            yield return c;
        }
    }

    /// <summary>
    /// The forms of a code: register-only and (if it has an r/m operand) memory, each with randomly chosen
    /// distinct registers (sometimes AH..BH for byte forms), never RSP.
    /// </summary>
    public static IEnumerable<Form> FormsOf(Code code, Random rng, bool allowLock = true, int registerVariants = 2)
    {
        var oc = code.ToOpCode();
        var hasRm = false;
        for (var n = 0; n < oc.OpCount; n++)
            if (IsRegOrMem(oc.GetOpKind(n)) || IsMemoryOnly(oc.GetOpKind(n))) hasRm = true;
        var memOnly = false;
        for (var n = 0; n < oc.OpCount; n++) if (IsMemoryOnly(oc.GetOpKind(n))) memOnly = true;
        if (!memOnly)
            for (var v = 0; v < registerVariants; v++)
            {
                var f = RandomForm(code, rng, memory: false, lockIt: false);
                if (f != null) yield return f;
            }
        if (hasRm)
        {
            var f = RandomForm(code, rng, memory: true, lockIt: false);
            if (f != null) yield return f;
            if (allowLock && oc.CanUseLockPrefix)
            {
                f = RandomForm(code, rng, memory: true, lockIt: true);
                if (f != null) yield return f;
            }
        }
    }

    public static Form? RandomForm(Code code, Random rng, bool memory, bool lockIt, int memBase = -1, bool? sameRegs = null)
    {
        var oc = code.ToOpCode();
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var used = new HashSet<int> { 4 };
            var mb = -1;
            if (memory)
            {
                // Never RAX..RBX: they are implicit operands of several instructions (MUL, CMPXCHG...).
                mb = memBase >= 0 ? memBase : 5 + rng.Next(11);
                used.Add(mb);
            }
            var idx = new int[oc.OpCount];
            var same = sameRegs ?? rng.Next(8) == 0;
            var first = -1;
            for (var n = 0; n < oc.OpCount; n++)
            {
                idx[n] = -1;
                if (!IsFreeRegister(oc.GetOpKind(n), memory)) continue;
                if (same && first >= 0) idx[n] = first;
                else
                {
                    idx[n] = PickFrom(rng, used);
                    used.Add(idx[n]);
                    if (first < 0) first = idx[n];
                }
            }
            var form = new Form
            {
                Code = code, RegIndex = idx, MemBase = mb, Lock = lockIt,
                HighByte = rng.Next(4) == 0,
                Disp = memory ? rng.Next(-64, 64) : 0,
            };
            var ins = form.Build(1);
            // XCHG eAX, eAX in the short form is NOP (90): not the instruction under test.
            if (code is Code.Xchg_r16_AX or Code.Xchg_r32_EAX or Code.Xchg_r64_RAX && idx[0] == 0) continue;
            if (CanEncode(ins)) return form;
        }
        return null;
    }

    private static int PickFrom(Random rng, HashSet<int> used)
    {
        while (true)
        {
            var r = rng.Next(16);
            if (!used.Contains(r)) return r;
        }
    }

    private sealed class CodeWriterImpl : CodeWriter
    {
        private readonly List<byte> _bytes = new();
        public override void WriteByte(byte value) => _bytes.Add(value);
        public byte[] ToArray() => _bytes.ToArray();
    }
}
