using System.Reflection;
using System.Reflection.Emit;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;

namespace Actorvisor.Kernel.Cpu.Jit;

/// <summary>A block translated to .NET code: runs the whole block from its first instruction.</summary>
internal delegate void CompiledCode(SoftwareCpu cpu, Instruction[] instructions);

/// <summary>
/// Translates a hot 64-bit-mode block into a <see cref="DynamicMethod"/> that the .NET JIT compiles to host
/// code (QEMU's TCG does the same with its own back end). Common integer instructions become inline IL over
/// guest registers held in IL locals and lazy flags held in locals; every other instruction calls its
/// interpreter handler ("call-out") with the CPU state synced first. Memory operands take the software
/// TLB's fast path inline; a miss, MMIO or fault goes through the interpreter's path after the same sync.
///
/// The contract is the interpreter's: after the block (or at a fault) RIP, CurrentIp, InstructionCount,
/// the registers and the lazy-flag fields are what <c>ExecuteBlock</c> would have left. The interpreter
/// stays the reference; tests run blocks both ways and compare.
/// </summary>
internal sealed partial class BlockCompiler
{
    /// <summary>The blocks compiled into this method, the entry block first (see <see cref="SoftwareCpu.FormRegion"/>).</summary>
    private readonly CodeBlock[] _region;
    /// <summary>The block being emitted, and its index in the region.</summary>
    private CodeBlock _block;
    private int _member;
    /// <summary>Where each region block's code starts.</summary>
    private readonly Label[] _heads;
    private readonly ILGenerator _il;
    private readonly DynamicMethod _method;

    private enum RegState : byte { NotLoaded, Clean, Dirty }
    private readonly LocalBuilder?[] _reg = new LocalBuilder?[16];
    private readonly RegState[] _regState = new RegState[16];
    private readonly LocalBuilder _gprs;

    /// <summary>Instructions of this block already added to <see cref="SoftwareCpu.InstructionCount"/>.</summary>
    private int _synced;
    /// <summary>Index of the instruction being emitted.</summary>
    private int _k;

    /// <summary>Instructions translated inline so far (a block with none is not worth compiling).</summary>
    private int _inline;


    private BlockCompiler(CodeBlock[] region)
    {
        _region = region;
        _block = region[0];
        var block = _block;
        // Anonymously hosted with restricted skip-visibility: the generated code may use the engine's internal
        // members, and CreateDelegate JIT-compiles it at once (so a background compile leaves no work behind).
        // The first parameter is what the delegate is closed over: the region's instruction arrays, for
        // call-outs (a delegate bound like an instance method is also called directly, where an open static
        // one goes through a shuffle thunk on every call).
        _method = new DynamicMethod($"block_{block.StartRip:x}", typeof(void),
            [typeof(Instruction[][]), typeof(SoftwareCpu), typeof(Instruction[])], restrictedSkipVisibility: true);
        // Every local is written before it is read (registers load on first use), so skip zeroing them.
        _method.InitLocals = false;
        _il = _method.GetILGenerator();
        _gprs = _il.DeclareLocal(typeof(ulong[]));
        _fd = _il.DeclareLocal(typeof(ulong));
        _fs = _il.DeclareLocal(typeof(ulong));
        _fr = _il.DeclareLocal(typeof(ulong));
        _fa = _il.DeclareLocal(typeof(ulong));
        _heads = new Label[region.Length];
        for (var m = 0; m < region.Length; m++) _heads[m] = _il.DefineLabel();
    }

    /// <summary>
    /// The compiled form of <paramref name="block"/>, or null where compiling does not pay or is not
    /// supported (not 64-bit mode, or nothing to translate inline).
    /// </summary>
    public static CompiledCode? Compile(CodeBlock block) => Compile(block, out _);

    /// <inheritdoc cref="Compile(CodeBlock)"/>
    /// <param name="ilBytes">The size of the IL handed to the .NET JIT (its cost grows with it).</param>
    public static CompiledCode? Compile(CodeBlock block, out int ilBytes)
    {
        ilBytes = 0;
        if (block.Bitness != 64 || !block.Cacheable || block.Count == 0) return null;
        var region = block.Region ?? [block];
        var c = new BlockCompiler(region);
        c.EmitBody();
        if (c._inline == 0) return null;
        ilBytes = c._il.ILOffset;
        var instructions = new Instruction[region.Length][];
        for (var m = 0; m < region.Length; m++) instructions[m] = region[m].Instructions;
        return (CompiledCode)c._method.CreateDelegate(typeof(CompiledCode), instructions);
    }

    private void EmitBody()
    {
        // gprs = cpu.Gprs
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, F.Gprs);
        _il.Emit(OpCodes.Stloc, _gprs);
        if (_region.Length > 1 || EndsInSelfLoop()) EmitEntryEpochs();
        // cpu.EndBlock = false (it stays false on every path from one region block into another)
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Stfld, F.EndBlock);
        for (var m = 0; m < _region.Length; m++) EmitMember(m);
    }

    /// <summary>One block of the region, entered with its state in the CPU (registers not loaded, flags in the fields).</summary>
    private void EmitMember(int m)
    {
        _member = m;
        _block = _region[m];
        _synced = 0;
        Array.Fill(_regState, RegState.NotLoaded);
        ForgetFlags();
        _il.MarkLabel(_heads[m]);

        var n = _block.Count;
        var ended = false;
        for (_k = 0; _k < n && !ended; _k++)
        {
            ref readonly var i = ref _block.Instructions[_k];
            if (TryEmitInline(in i, out ended)) _inline++;
            else
            {
                EmitCallOut(in i);
                // After a control transfer handled by a call-out the block is over (it was its last instruction).
                ended = _k == n - 1;
            }
        }
        if (!ended)
        {
            // Fell off the end of a block cut by length or page: continue at the next instruction.
            _k = n - 1;
            EmitExitTo(n, _block.Instructions[n - 1].NextIP);
        }
    }

    // ---- guest registers in locals ----

    /// <summary>Pushes the full 64-bit register <paramref name="r"/> (0..15), loading it on first use.</summary>
    private void LoadReg(int r)
    {
        EnsureLoaded(r);
        _il.Emit(OpCodes.Ldloc, _reg[r]!);
    }

    private void EnsureLoaded(int r)
    {
        if (_regState[r] != RegState.NotLoaded) return;
        _reg[r] ??= _il.DeclareLocal(typeof(ulong));
        _il.Emit(OpCodes.Ldloc, _gprs);
        EmitInt(r);
        _il.Emit(OpCodes.Ldelem_I8);
        _il.Emit(OpCodes.Stloc, _reg[r]!);
        _regState[r] = RegState.Clean;
    }

    /// <summary>Pops a 64-bit value into register <paramref name="r"/>.</summary>
    private void StoreReg(int r)
    {
        _reg[r] ??= _il.DeclareLocal(typeof(ulong));
        _il.Emit(OpCodes.Stloc, _reg[r]!);
        _regState[r] = RegState.Dirty;
    }

    /// <summary>Writes dirty registers back to <c>cpu.Gprs</c>; <paramref name="markClean"/> when every path continues from here.</summary>
    private void WriteBackRegisters(bool markClean)
    {
        for (var r = 0; r < 16; r++)
        {
            if (_regState[r] != RegState.Dirty) continue;
            _il.Emit(OpCodes.Ldloc, _gprs);
            EmitInt(r);
            _il.Emit(OpCodes.Ldloc, _reg[r]!);
            _il.Emit(OpCodes.Stelem_I8);
            if (markClean) _regState[r] = RegState.Clean;
        }
    }

    // ---- syncing with the interpreter's state ----

    /// <summary>
    /// Before an interpreter path that may fault, reach a device or read the clock: registers and flags in
    /// the CPU, InstructionCount counting the instructions before this one, CurrentIp/RIP at this one.
    /// Compile-time state is left as it is (the fast path continues without these stores).
    /// </summary>
    private void EmitSlowPathSync(in Instruction i)
    {
        EmitSlowPathStateSync();
        AddInstructionCount(_k - _synced);
        StoreIps(in i);
    }

    /// <summary>
    /// Before a slow read or write (<see cref="JitRuntime.ReadSlow"/>, <see cref="JitRuntime.WriteSlow"/>): the
    /// registers and flags in the CPU. The helper sets the rest of <see cref="EmitSlowPathSync"/>'s state from the
    /// arguments <see cref="EmitSlowPathPosition"/> pushes, and gives the count back when it returns.
    /// </summary>
    private void EmitSlowPathStateSync()
    {
        WriteBackRegisters(markClean: false);
        FlushFlags(markClean: false);
    }

    /// <summary>Pushes the slow helpers' last arguments: the instruction's address, its length and the instructions before it not yet counted.</summary>
    private void EmitSlowPathPosition(in Instruction i)
    {
        EmitConst(i.IP);
        EmitInt(i.Length);
        EmitInt(_k - _synced);
    }

    private void StoreIps(in Instruction i)
    {
        _il.Emit(OpCodes.Ldarg_1);
        EmitConst(i.IP);
        _il.Emit(OpCodes.Stfld, F.CurrentIp);
        _il.Emit(OpCodes.Ldarg_1);
        EmitConst(i.NextIP);
        _il.Emit(OpCodes.Stfld, F.Rip);
    }

    private void AddInstructionCount(int delta)
    {
        if (delta == 0) return;
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, F.InstructionCount);
        _il.Emit(OpCodes.Ldc_I8, (long)delta);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stfld, F.InstructionCount);
    }

    /// <summary>
    /// Leaves the block after <paramref name="executed"/> instructions (the last of them is <c>_k</c>), RIP
    /// set by <paramref name="pushRip"/>. Compile-time state is unchanged: code after a conditional exit
    /// continues with it.
    /// </summary>
    private void EmitExit(int executed, Action pushRip)
    {
        WriteBackRegisters(markClean: false);
        FlushFlags(markClean: false);
        AddInstructionCount(executed - _synced);
        _il.Emit(OpCodes.Ldarg_1);
        EmitConst(_block.Instructions[executed - 1].IP);
        _il.Emit(OpCodes.Stfld, F.CurrentIp);
        _il.Emit(OpCodes.Ldarg_1);
        pushRip();
        _il.Emit(OpCodes.Stfld, F.Rip);
        EmitReturn();
    }

    /// <summary>Returns to the run loop, telling it which region block ran last (whose links it follows next).</summary>
    private void EmitReturn()
    {
        if (_region.Length > 1)
        {
            _il.Emit(OpCodes.Ldarg_1);
            EmitInt(_member);
            _il.Emit(OpCodes.Stfld, F.ExitMember);
        }
        _il.Emit(OpCodes.Ret);
    }

    /// <summary>After an instruction that stored to memory: a store to a code page ends the block (SMC).</summary>
    private void EmitEndBlockCheck(in Instruction i)
    {
        var cont = _il.DefineLabel();
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, F.EndBlock);
        _il.Emit(OpCodes.Brfalse, cont);
        var next = i.NextIP;
        EmitExitTo(_k + 1, next);
        _il.MarkLabel(cont);
    }

    /// <summary>
    /// An instruction run by its interpreter handler, exactly as <c>ExecuteBlock</c> runs it: state synced,
    /// CurrentIp and RIP set, the handler called, the count bumped, and the block left if the handler
    /// branched or asked to end it.
    /// </summary>
    private unsafe void EmitCallOut(in Instruction i)
    {
        WriteBackRegisters(markClean: true);
        FlushFlags(markClean: true);
        AddInstructionCount(_k - _synced);
        _synced = _k;
        StoreIps(in i);

        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldarg_0);
        EmitInt(_member);
        _il.Emit(OpCodes.Ldelem_Ref);
        EmitInt(_k);
        _il.Emit(OpCodes.Ldelema, typeof(Instruction));
        _il.Emit(OpCodes.Ldc_I8, (long)(nint)_block.Handlers[_k]);
        _il.Emit(OpCodes.Conv_I);
        _il.EmitCalli(OpCodes.Calli, CallingConventions.Standard, typeof(void),
            [typeof(SoftwareCpu), typeof(Instruction).MakeByRefType()], null);

        AddInstructionCount(1);
        _synced = _k + 1;
        // The handler may have changed any register or flag.
        Array.Fill(_regState, RegState.NotLoaded);
        ForgetFlags();

        if (_k == _block.Count - 1)
        {
            EmitReturn();
            return;
        }
        // if (cpu.EndBlock || cpu.Rip != next) return;
        var leave = _il.DefineLabel();
        var cont = _il.DefineLabel();
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, F.EndBlock);
        _il.Emit(OpCodes.Brtrue, leave);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, F.Rip);
        EmitConst(i.NextIP);
        _il.Emit(OpCodes.Beq, cont);
        _il.MarkLabel(leave);
        EmitReturn();
        _il.MarkLabel(cont);
    }

    // ---- constants ----

    private void EmitConst(ulong v) => _il.Emit(OpCodes.Ldc_I8, (long)v);

    private void EmitInt(int v)
    {
        switch (v)
        {
            case 0: _il.Emit(OpCodes.Ldc_I4_0); break;
            case 1: _il.Emit(OpCodes.Ldc_I4_1); break;
            case 2: _il.Emit(OpCodes.Ldc_I4_2); break;
            case 3: _il.Emit(OpCodes.Ldc_I4_3); break;
            case 4: _il.Emit(OpCodes.Ldc_I4_4); break;
            case 5: _il.Emit(OpCodes.Ldc_I4_5); break;
            case 6: _il.Emit(OpCodes.Ldc_I4_6); break;
            case 7: _il.Emit(OpCodes.Ldc_I4_7); break;
            case 8: _il.Emit(OpCodes.Ldc_I4_8); break;
            default:
                if (v is >= sbyte.MinValue and <= sbyte.MaxValue) _il.Emit(OpCodes.Ldc_I4_S, (sbyte)v);
                else _il.Emit(OpCodes.Ldc_I4, v);
                break;
        }
    }

    /// <summary>The members generated code touches.</summary>
    private static class F
    {
        private const BindingFlags Any = BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        public static readonly FieldInfo Gprs = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.Gprs), Any)!;
        public static readonly FieldInfo Rip = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.Rip), Any)!;
        public static readonly FieldInfo CurrentIp = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.CurrentIp), Any)!;
        public static readonly FieldInfo InstructionCount = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.InstructionCount), Any)!;
        public static readonly FieldInfo EndBlock = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.EndBlock), Any)!;
        public static readonly FieldInfo LfOp = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.LfOp), Any)!;
        public static readonly FieldInfo LfSize = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.LfSize), Any)!;
        public static readonly FieldInfo LfDst = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.LfDst), Any)!;
        public static readonly FieldInfo LfSrc = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.LfSrc), Any)!;
        public static readonly FieldInfo LfRes = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.LfRes), Any)!;
        public static readonly FieldInfo FlagsArith = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.FlagsArith), Any)!;
        public static readonly FieldInfo ExitMember = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.ExitMember), Any)!;
        public static readonly FieldInfo InterruptShadow = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.InterruptShadow), Any)!;
        public static readonly MethodInfo Halted = typeof(SoftwareCpu).GetProperty(nameof(SoftwareCpu.Halted), Any)!.GetGetMethod(true)!;
        public static readonly MethodInfo Bitness = typeof(SoftwareCpu).GetProperty(nameof(SoftwareCpu.Bitness), Any)!.GetGetMethod(true)!;
        public static readonly FieldInfo Kick = typeof(SoftwareCpu).GetField("_kick", Any)!;
        public static readonly FieldInfo NmiPending = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.NmiPending), Any)!;
        public static readonly FieldInfo RunLimit = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.RunLimit), Any)!;
        public static readonly FieldInfo TranslationEpoch = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.TranslationEpoch), Any)!;
        public static readonly FieldInfo TlbR = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.TlbR), Any)!;
        public static readonly FieldInfo TlbW = typeof(SoftwareCpu).GetField(nameof(SoftwareCpu.TlbW), Any)!;
        public static readonly FieldInfo TlbTag = typeof(TlbEntry).GetField(nameof(TlbEntry.Tag))!;
        public static readonly FieldInfo TlbHost = typeof(TlbEntry).GetField(nameof(TlbEntry.Host))!;
        public static readonly FieldInfo TlbPhysPage = typeof(TlbEntry).GetField(nameof(TlbEntry.PhysPage))!;
        public static readonly MethodInfo IsCodePage = typeof(Actorvisor.Kernel.Memory.GuestMemory).GetMethod(nameof(Actorvisor.Kernel.Memory.GuestMemory.IsCodePage))!;
        public static readonly MethodInfo Memory = typeof(SoftwareCpu).GetProperty(nameof(SoftwareCpu.Memory), Any)!.GetGetMethod(true)!;
        public static readonly MethodInfo CodeEpoch = typeof(Actorvisor.Kernel.Memory.GuestMemory).GetProperty(nameof(Actorvisor.Kernel.Memory.GuestMemory.CodeEpoch), Any)!.GetGetMethod(true)!;
        public static readonly MethodInfo InterruptDeliverable = typeof(SoftwareCpu).GetMethod(nameof(SoftwareCpu.InterruptDeliverable), Any)!;
        public static readonly MethodInfo Condition = typeof(SoftwareCpu).GetMethod(nameof(SoftwareCpu.Condition), Any)!;
        public static readonly MethodInfo IsCanonical = typeof(SoftwareCpu).GetMethod(nameof(SoftwareCpu.IsCanonical), Any)!;
        public static readonly MethodInfo GetCF = typeof(SoftwareCpu).GetMethod(nameof(SoftwareCpu.GetCF), Any)!;
        public static readonly MethodInfo SetCarryOverflow = typeof(SoftwareCpu).GetMethod(nameof(SoftwareCpu.SetCarryOverflow), Any)!;

        public static MethodInfo Runtime(string name) => typeof(JitRuntime).GetMethod(name, Any)!;
    }
}

