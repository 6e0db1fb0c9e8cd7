using System.Reflection.Emit;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Jit;

/// <summary>
/// Operands of inline instructions: general registers (never AH..BH, which call out), immediates as the
/// interpreter sign-extends them, and 64-bit-mode memory operands through the TLB fast path with the
/// interpreter's access as the slow path. Register loads happen before any fast/slow split, so both paths
/// join with the same registers in locals.
/// </summary>
internal sealed partial class BlockCompiler
{
    private readonly List<LocalBuilder> _temps = new();
    private int _tempsInUse;

    /// <summary>A ulong scratch local, free again at the next instruction.</summary>
    private LocalBuilder Temp()
    {
        if (_tempsInUse == _temps.Count) _temps.Add(_il.DeclareLocal(typeof(ulong)));
        return _temps[_tempsInUse++];
    }

    /// <summary>A general register (not AH..BH): its slot and width in bytes.</summary>
    private static bool IsGpr(Register r, out int index, out int size)
    {
        var info = RegTable.Info[(int)r];
        index = info.Index;
        size = info.Size;
        return size != 0 && !info.High;
    }

    private static ulong SizeMask(int size) => size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    /// <summary>An immediate operand as the interpreter's ReadOperand produces it, masked to <paramref name="size"/>.</summary>
    private static bool Immediate(in Instruction i, int op, int size, out ulong value)
    {
        value = i.GetOpKind(op) switch
        {
            OpKind.Immediate8 => i.Immediate8,
            OpKind.Immediate16 => i.Immediate16,
            OpKind.Immediate32 => i.Immediate32,
            OpKind.Immediate64 => i.Immediate64,
            OpKind.Immediate8to16 => (ushort)i.Immediate8to16,
            OpKind.Immediate8to32 => (uint)i.Immediate8to32,
            OpKind.Immediate8to64 => (ulong)i.Immediate8to64,
            OpKind.Immediate32to64 => (ulong)i.Immediate32to64,
            _ => 0,
        };
        value &= SizeMask(size);
        return i.GetOpKind(op) is OpKind.Immediate8 or OpKind.Immediate16 or OpKind.Immediate32 or OpKind.Immediate64 or
            OpKind.Immediate8to16 or OpKind.Immediate8to32 or OpKind.Immediate8to64 or OpKind.Immediate32to64;
    }

    /// <summary>Size of operand <paramref name="op"/> if it can be read inline (register, immediate or memory), else 0.</summary>
    private int OperandBytes(in Instruction i, int op)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
                return IsGpr(i.GetOpRegister(op), out _, out var size) ? size : 0;
            case OpKind.Memory:
                return MemoryOk(in i) ? SoftwareCpu.MemoryOperandSize(in i) : 0;
            default:
                return Immediate(in i, op, 8, out _) ? OperandTables.ImmediateBytes(i.GetOpKind(op)) : 0;
        }
    }

    /// <summary>Reads operand <paramref name="op"/>, zero-extended from <paramref name="size"/>, into a local.</summary>
    private LocalBuilder Fetch(in Instruction i, int op, int size)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
            {
                IsGpr(i.GetOpRegister(op), out var r, out _);
                var t = Temp();
                LoadReg(r);
                Truncate(size);
                _il.Emit(OpCodes.Stloc, t);
                return t;
            }
            case OpKind.Memory:
                return LoadMemory(in i, size);
            default:
            {
                Immediate(in i, op, size, out var v);
                var t = Temp();
                EmitConst(v);
                _il.Emit(OpCodes.Stloc, t);
                return t;
            }
        }
    }

    /// <summary>Zero-extends the ulong on the stack from <paramref name="size"/> bytes.</summary>
    private void Truncate(int size)
    {
        switch (size)
        {
            case 4: _il.Emit(OpCodes.Conv_U4); _il.Emit(OpCodes.Conv_U8); break;
            case 2: _il.Emit(OpCodes.Conv_U2); _il.Emit(OpCodes.Conv_U8); break;
            case 1: _il.Emit(OpCodes.Conv_U1); _il.Emit(OpCodes.Conv_U8); break;
        }
    }

    /// <summary>
    /// Writes <paramref name="value"/> to register slot <paramref name="r"/> at <paramref name="size"/> bytes:
    /// a 32-bit write zero-extends, 8/16-bit writes keep the rest (x86-64 rules, as WriteGpr).
    /// </summary>
    private void WriteRegister(int r, int size, LocalBuilder value)
    {
        if (size is 8 or 4)
        {
            _il.Emit(OpCodes.Ldloc, value);
            Truncate(size);
            StoreReg(r);
            return;
        }
        LoadReg(r);
        EmitConst(~SizeMask(size));
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Ldloc, value);
        Truncate(size);
        _il.Emit(OpCodes.Or);
        StoreReg(r);
    }

    // ---- memory ----

    /// <summary>True for a memory operand whose address can be formed inline in 64-bit mode.</summary>
    private static bool MemoryOk(in Instruction i) => AddressOk(in i) && SoftwareCpu.MemoryOperandSize(in i) is 1 or 2 or 4 or 8;

    /// <summary>The address is one we compute inline (LEA's operand has no size: it is not accessed).</summary>
    private static bool AddressOk(in Instruction i)
    {
        var b = i.MemoryBase;
        var x = i.MemoryIndex;
        if (b != Register.None && b != Register.RIP && b != Register.EIP && !IsGpr(b, out _, out _)) return false;
        if (x != Register.None && !IsGpr(x, out _, out _)) return false;
        var seg = SoftwareCpu.SegIndex(i.MemorySegment);
        return seg is >= 0 and <= 5 && AddressBytes(in i) is 8 or 4;
    }

    /// <summary>Address size as the interpreter's AddressSize computes it in 64-bit mode.</summary>
    private static int AddressBytes(in Instruction i)
    {
        var b = i.MemoryBase;
        if (b != Register.None) return OperandTables.RegisterBytes[(int)b];
        var x = i.MemoryIndex;
        if (x != Register.None) return OperandTables.RegisterBytes[(int)x];
        var d = i.MemoryDisplSize;
        return d >= 2 ? d : 8;
    }

    /// <summary>Pushes the effective address (offset in the segment), truncated to the address size.</summary>
    private void EmitEffectiveAddress(in Instruction i)
    {
        var b = i.MemoryBase;
        if (b == Register.RIP) { EmitConst(i.IPRelativeMemoryAddress); return; }
        if (b == Register.EIP) { EmitConst((uint)i.IPRelativeMemoryAddress); return; }
        EmitConst(i.MemoryDisplacement64);
        if (b != Register.None)
        {
            IsGpr(b, out var r, out _);
            LoadReg(r);
            _il.Emit(OpCodes.Add);
        }
        var x = i.MemoryIndex;
        if (x != Register.None)
        {
            IsGpr(x, out var r, out _);
            LoadReg(r);
            var scale = i.MemoryIndexScale;
            if (scale > 1)
            {
                EmitInt(System.Numerics.BitOperations.Log2((uint)scale));
                _il.Emit(OpCodes.Shl);
            }
            _il.Emit(OpCodes.Add);
        }
        if (AddressBytes(in i) == 4) Truncate(4);
    }

    /// <summary>The effective address and the linear address (FS/GS base added) of the memory operand, in locals.</summary>
    private (LocalBuilder Ea, LocalBuilder La, int Seg) EmitAddress(in Instruction i)
    {
        var seg = SoftwareCpu.SegIndex(i.MemorySegment);
        var ea = Temp();
        EmitEffectiveAddress(in i);
        _il.Emit(OpCodes.Stloc, ea);
        if (seg < Seg.FS) return (ea, ea, seg);
        var la = Temp();
        _il.Emit(OpCodes.Ldloc, ea);
        _il.Emit(OpCodes.Ldarg_1);
        EmitInt(seg);
        _il.Emit(OpCodes.Call, F.Runtime(nameof(JitRuntime.SegmentBase)));
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stloc, la);
        return (ea, la, seg);
    }

    /// <summary>Reads the memory operand (<paramref name="size"/> bytes, zero-extended) into a local.</summary>
    private LocalBuilder LoadMemory(in Instruction i, int size)
    {
        var (ea, la, seg) = EmitAddress(in i);
        return LoadAt(in i, ea, la, seg, size);
    }

    /// <summary>A read at a formed address: the TLB fast path, else the interpreter's read after a sync.</summary>
    private LocalBuilder LoadAt(in Instruction i, LocalBuilder ea, LocalBuilder la, int seg, int size)
    {
        var v = Temp();
        var done = _il.DefineLabel();
        var slow = EmitHostPointer(la, size, write: false);
        _il.Emit(size switch { 1 => OpCodes.Ldind_U1, 2 => OpCodes.Ldind_U2, 4 => OpCodes.Ldind_U4, _ => OpCodes.Ldind_I8 });
        if (size != 8) _il.Emit(OpCodes.Conv_U8);
        _il.Emit(OpCodes.Stloc, v);
        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(slow);
        EmitSlowPathStateSync();
        _il.Emit(OpCodes.Ldarg_1);
        EmitInt(seg);
        _il.Emit(OpCodes.Ldloc, ea);
        EmitInt(size);
        EmitSlowPathPosition(in i);
        _il.Emit(OpCodes.Call, F.Runtime(nameof(JitRuntime.ReadSlow)));
        _il.Emit(OpCodes.Stloc, v);
        _il.MarkLabel(done);
        return v;
    }

    /// <summary>
    /// A write at a formed address, then <paramref name="finish"/> (the instruction's remaining effects, emitted
    /// on both paths). Fast path: the TLB's host pointer. Slow path: the interpreter's write after a sync; a
    /// write that hit a page holding code ends the block after this instruction (self-modifying code) unless
    /// <paramref name="branches"/>.
    /// </summary>
    private void StoreAt(in Instruction i, LocalBuilder ea, LocalBuilder la, int seg, int size, LocalBuilder value, Action? finish = null, bool branches = false)
    {
        var done = _il.DefineLabel();
        var slow = EmitHostPointer(la, size, write: true);
        _il.Emit(OpCodes.Ldloc, value);
        switch (size)
        {
            case 1: _il.Emit(OpCodes.Conv_U1); _il.Emit(OpCodes.Stind_I1); break;
            case 2: _il.Emit(OpCodes.Conv_U2); _il.Emit(OpCodes.Stind_I2); break;
            case 4: _il.Emit(OpCodes.Conv_U4); _il.Emit(OpCodes.Stind_I4); break;
            default: _il.Emit(OpCodes.Stind_I8); break;
        }
        finish?.Invoke();
        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(slow);
        EmitSlowPathStateSync();
        _il.Emit(OpCodes.Ldarg_1);
        EmitInt(seg);
        _il.Emit(OpCodes.Ldloc, ea);
        EmitInt(size);
        _il.Emit(OpCodes.Ldloc, value);
        EmitSlowPathPosition(in i);
        _il.Emit(OpCodes.Call, F.Runtime(nameof(JitRuntime.WriteSlow)));
        finish?.Invoke();
        // A branch (CALL) leaves the block right after anyway.
        if (!branches) EmitEndBlockCheck(in i);
        _il.MarkLabel(done);
    }

    /// <summary>
    /// The software TLB's hit path of <see cref="SoftwareCpu.ReadLinear"/> or <see cref="SoftwareCpu.WriteLinear"/>
    /// (as <paramref name="write"/> says) written out in IL: on a hit the host pointer is left on the stack; on a
    /// miss, a page-crossing access, MMIO or (for a write) a page holding code, control goes to the returned
    /// label with the stack empty. Written out rather than left for the .NET JIT to inline from a helper: its
    /// inliner's work at every access was a fifth of its time for a block (bench: actorvisor-bench jit).
    /// </summary>
    private System.Reflection.Emit.Label EmitHostPointer(LocalBuilder la, int size, bool write)
    {
        var slow = _il.DefineLabel();
        if (size > 1)
        {
            // if ((la & 0xFFF) > 0x1000 - size) slow
            _il.Emit(OpCodes.Ldloc, la);
            EmitConst(0xFFF);
            _il.Emit(OpCodes.And);
            EmitConst((ulong)(0x1000 - size));
            _il.Emit(OpCodes.Bgt_Un, slow);
        }
        // ref e = ref cpu.TlbR/TlbW[(int)(la >> 12) & TlbMask]
        var entry = TlbEntryLocal();
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, write ? F.TlbW : F.TlbR);
        _il.Emit(OpCodes.Ldloc, la);
        EmitInt(12);
        _il.Emit(OpCodes.Shr_Un);
        _il.Emit(OpCodes.Conv_I4);
        EmitInt(SoftwareCpu.TlbMask);
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Ldelema, typeof(TlbEntry));
        _il.Emit(OpCodes.Stloc, entry);
        // if (e.Tag != (la & ~0xFFF)) slow
        _il.Emit(OpCodes.Ldloc, entry);
        _il.Emit(OpCodes.Ldfld, F.TlbTag);
        _il.Emit(OpCodes.Ldloc, la);
        EmitConst(~0xFFFUL);
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Bne_Un, slow);
        // p = e.Host; if (p == 0) slow
        var p = HostPointerLocal();
        _il.Emit(OpCodes.Ldloc, entry);
        _il.Emit(OpCodes.Ldfld, F.TlbHost);
        _il.Emit(OpCodes.Stloc, p);
        _il.Emit(OpCodes.Ldloc, p);
        _il.Emit(OpCodes.Brfalse, slow);
        if (write)
        {
            // if (cpu.Memory.IsCodePage(e.PhysPage >> 12)) slow: the write must invalidate the page's blocks
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Call, F.Memory);
            _il.Emit(OpCodes.Ldloc, entry);
            _il.Emit(OpCodes.Ldfld, F.TlbPhysPage);
            EmitInt(12);
            _il.Emit(OpCodes.Shr_Un);
            _il.Emit(OpCodes.Call, F.IsCodePage);
            _il.Emit(OpCodes.Brtrue, slow);
        }
        // p + (la & 0xFFF)
        _il.Emit(OpCodes.Ldloc, p);
        _il.Emit(OpCodes.Ldloc, la);
        EmitConst(0xFFF);
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Conv_I);
        _il.Emit(OpCodes.Add);
        return slow;
    }

    private LocalBuilder? _tlbEntry;

    private LocalBuilder TlbEntryLocal() => _tlbEntry ??= _il.DeclareLocal(typeof(TlbEntry).MakeByRefType());

    private LocalBuilder? _hostPointer;

    private LocalBuilder HostPointerLocal() => _hostPointer ??= _il.DeclareLocal(typeof(nint));
}
