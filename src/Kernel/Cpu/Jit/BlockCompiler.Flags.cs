using System.Reflection.Emit;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Jit;

/// <summary>
/// Lazy flags inside a compiled block. An inline flag-setting instruction leaves its operands and result in
/// IL locals (<c>_fd</c>, <c>_fs</c>, <c>_fr</c>, and <c>_fa</c> for the carry-in or kept CF) and the
/// operation and size in compile-time state; they reach the CPU's lazy-flag fields only when something
/// outside the block's inline code could look (a call-out, a slow path, the exit). A condition after a
/// CMP/SUB or a logic operation is then a compare of locals, as the interpreter's ConditionInline does.
/// Values in the locals are masked to the operand size.
/// </summary>
internal sealed partial class BlockCompiler
{
    private readonly LocalBuilder _fd, _fs, _fr, _fa;
    /// <summary>The locals hold the current flags (else the CPU's fields do).</summary>
    private bool _flagsKnown;
    /// <summary>The locals hold flags not yet stored into the CPU.</summary>
    private bool _flagsDirty;
    private FlagOp _flagOp;
    private int _flagSize;

    /// <summary>
    /// Set after an instruction that writes only CF and OF over the flags before it, whose SF, ZF, AF and PF it keeps
    /// (as the interpreter and the host CPU do): IMUL (CF = OF = overflow) and ROL/ROR by a constant. These locals
    /// hold CF and OF (0 or 1); the flags are computed only where something reads or saves them, so such an
    /// instruction whose flags the next ALU instruction overwrites costs no flag work.
    /// </summary>
    private LocalBuilder? _pendingCarry, _pendingOverflow;
    private LocalBuilder? _mulOverflowLocal, _rotateCarryLocal, _rotateOverflowLocal;

    /// <summary>Records that the locals now hold the flags of <paramref name="op"/> at <paramref name="size"/> bytes.</summary>
    private void SetFlags(FlagOp op, int size)
    {
        _pendingCarry = _pendingOverflow = null;
        _flagsKnown = true;
        _flagsDirty = true;
        _flagOp = op;
        _flagSize = size;
    }

    /// <summary>Stores flags held in locals into the CPU's lazy-flag fields.</summary>
    private void FlushFlags(bool markClean)
    {
        if (_pendingCarry is { } carry)
        {
            // The flags before into the fields, then the pending CF/OF over them, as the interpreter does.
            FlushKnownFlags(markClean);
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldloc, carry);
            _il.Emit(OpCodes.Ldloc, _pendingOverflow!);
            _il.Emit(OpCodes.Call, F.SetCarryOverflow);
            if (markClean) ForgetFlags();
            return;
        }
        FlushKnownFlags(markClean);
    }

    private void FlushKnownFlags(bool markClean)
    {
        if (!_flagsKnown || !_flagsDirty) return;
        _il.Emit(OpCodes.Ldarg_1);
        EmitInt((int)_flagOp);
        _il.Emit(OpCodes.Stfld, F.LfOp);
        _il.Emit(OpCodes.Ldarg_1);
        EmitInt(_flagSize);
        _il.Emit(OpCodes.Stfld, F.LfSize);
        StoreField(F.LfDst, _fd);
        StoreField(F.LfSrc, _fs);
        StoreField(F.LfRes, _fr);
        if (_flagOp is FlagOp.Adc or FlagOp.Sbb or FlagOp.Inc or FlagOp.Dec) StoreField(F.FlagsArith, _fa);
        if (markClean) _flagsDirty = false;
    }

    private void StoreField(System.Reflection.FieldInfo f, LocalBuilder value)
    {
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldloc, value);
        _il.Emit(OpCodes.Stfld, f);
    }

    /// <summary>The CPU's fields are the truth again (after a call-out or an eager flag write).</summary>
    private void ForgetFlags()
    {
        _pendingCarry = _pendingOverflow = null;
        _flagsKnown = false;
        _flagsDirty = false;
    }

    /// <summary>Pushes CF as a ulong 0 or 1.</summary>
    private void EmitCarry()
    {
        if (_pendingCarry is { } carry)
        {
            _il.Emit(OpCodes.Ldloc, carry);
            _il.Emit(OpCodes.Conv_U8);
            return;
        }
        if (_flagsKnown)
        {
            switch (_flagOp)
            {
                case FlagOp.Sub:
                    _il.Emit(OpCodes.Ldloc, _fd);
                    _il.Emit(OpCodes.Ldloc, _fs);
                    _il.Emit(OpCodes.Clt_Un);
                    _il.Emit(OpCodes.Conv_U8);
                    return;
                case FlagOp.Add:
                    _il.Emit(OpCodes.Ldloc, _fr);
                    _il.Emit(OpCodes.Ldloc, _fd);
                    _il.Emit(OpCodes.Clt_Un);
                    _il.Emit(OpCodes.Conv_U8);
                    return;
                case FlagOp.Logic:
                    _il.Emit(OpCodes.Ldc_I4_0);
                    _il.Emit(OpCodes.Conv_U8);
                    return;
                case FlagOp.Inc or FlagOp.Dec:
                    // INC/DEC keep the CF they found, held in _fa.
                    _il.Emit(OpCodes.Ldloc, _fa);
                    return;
            }
        }
        FlushFlags(markClean: true);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Call, F.GetCF);
        _il.Emit(OpCodes.Conv_U8);
    }

    /// <summary>Pushes a condition's truth as an int 0 or 1.</summary>
    private void EmitCondition(ConditionCode cc)
    {
        if (_pendingCarry is { } carry)
        {
            switch (cc)
            {
                case ConditionCode.b or ConditionCode.o:
                    _il.Emit(OpCodes.Ldloc, cc == ConditionCode.b ? carry : _pendingOverflow!);
                    return;
                case ConditionCode.ae or ConditionCode.no:
                    _il.Emit(OpCodes.Ldloc, cc == ConditionCode.ae ? carry : _pendingOverflow!);
                    Not();
                    return;
                case ConditionCode.e or ConditionCode.ne or ConditionCode.s or ConditionCode.ns:
                    // ZF and SF are the ones from before.
                    var overflow = _pendingOverflow;
                    _pendingCarry = _pendingOverflow = null;
                    EmitCondition(cc);
                    _pendingCarry = carry;
                    _pendingOverflow = overflow;
                    return;
            }
            FlushFlags(markClean: true);
        }
        if (_flagsKnown && _flagOp == FlagOp.Sub && EmitSubCondition(cc)) return;
        if (_flagsKnown && _flagOp == FlagOp.Logic && EmitLogicCondition(cc)) return;
        if (_flagsKnown && _flagOp is FlagOp.Add or FlagOp.Adc or FlagOp.Sbb or FlagOp.Inc or FlagOp.Dec &&
            EmitResultCondition(cc)) return;
        FlushFlags(markClean: true);
        _il.Emit(OpCodes.Ldarg_1);
        EmitInt((int)cc);
        _il.Emit(OpCodes.Call, F.Condition);
    }

    /// <summary>After CMP/SUB: compare the operands (unsigned, or signed at the operand size).</summary>
    private bool EmitSubCondition(ConditionCode cc)
    {
        var signed = cc is ConditionCode.l or ConditionCode.ge or ConditionCode.le or ConditionCode.g;
        if (!signed && cc is not (ConditionCode.e or ConditionCode.ne or ConditionCode.b or ConditionCode.ae or ConditionCode.be or ConditionCode.a))
            return false;
        PushSized(_fd, signed);
        PushSized(_fs, signed);
        switch (cc)
        {
            case ConditionCode.e: _il.Emit(OpCodes.Ceq); break;
            case ConditionCode.ne: _il.Emit(OpCodes.Ceq); Not(); break;
            case ConditionCode.b: _il.Emit(OpCodes.Clt_Un); break;
            case ConditionCode.ae: _il.Emit(OpCodes.Clt_Un); Not(); break;
            case ConditionCode.be: _il.Emit(OpCodes.Cgt_Un); Not(); break;
            case ConditionCode.a: _il.Emit(OpCodes.Cgt_Un); break;
            case ConditionCode.l: _il.Emit(OpCodes.Clt); break;
            case ConditionCode.ge: _il.Emit(OpCodes.Clt); Not(); break;
            case ConditionCode.le: _il.Emit(OpCodes.Cgt); Not(); break;
            case ConditionCode.g: _il.Emit(OpCodes.Cgt); break;
        }
        return true;
    }

    /// <summary>After AND/OR/XOR/TEST: CF = OF = 0, so the conditions are tests of the result.</summary>
    private bool EmitLogicCondition(ConditionCode cc)
    {
        switch (cc)
        {
            case ConditionCode.e:
                _il.Emit(OpCodes.Ldloc, _fr); _il.Emit(OpCodes.Ldc_I4_0); _il.Emit(OpCodes.Conv_U8); _il.Emit(OpCodes.Ceq);
                return true;
            case ConditionCode.ne:
                _il.Emit(OpCodes.Ldloc, _fr); _il.Emit(OpCodes.Ldc_I4_0); _il.Emit(OpCodes.Conv_U8); _il.Emit(OpCodes.Cgt_Un);
                return true;
            case ConditionCode.s or ConditionCode.l:
                PushSized(_fr, signed: true); PushZero64(); _il.Emit(OpCodes.Clt);
                return true;
            case ConditionCode.ns or ConditionCode.ge:
                PushSized(_fr, signed: true); PushZero64(); _il.Emit(OpCodes.Clt); Not();
                return true;
            case ConditionCode.le:
                PushSized(_fr, signed: true); PushZero64(); _il.Emit(OpCodes.Cgt); Not();
                return true;
            case ConditionCode.g:
                PushSized(_fr, signed: true); PushZero64(); _il.Emit(OpCodes.Cgt);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// After ADD, ADC, SBB, INC or DEC: ZF and SF are tests of the result; after ADD, CF is a carry out of
    /// the masked sum (result below the first operand), so the unsigned conditions follow too. A loop's
    /// <c>add r, 1; jne</c> then needs no call to the flags code.
    /// </summary>
    private bool EmitResultCondition(ConditionCode cc)
    {
        switch (cc)
        {
            case ConditionCode.e:
                _il.Emit(OpCodes.Ldloc, _fr); PushZero64(); _il.Emit(OpCodes.Ceq);
                return true;
            case ConditionCode.ne:
                _il.Emit(OpCodes.Ldloc, _fr); PushZero64(); _il.Emit(OpCodes.Cgt_Un);
                return true;
            case ConditionCode.s:
                PushSized(_fr, signed: true); PushZero64(); _il.Emit(OpCodes.Clt);
                return true;
            case ConditionCode.ns:
                PushSized(_fr, signed: true); PushZero64(); _il.Emit(OpCodes.Clt); Not();
                return true;
        }
        if (_flagOp != FlagOp.Add) return false;
        switch (cc)
        {
            case ConditionCode.b:
                _il.Emit(OpCodes.Ldloc, _fr); _il.Emit(OpCodes.Ldloc, _fd); _il.Emit(OpCodes.Clt_Un);
                return true;
            case ConditionCode.ae:
                _il.Emit(OpCodes.Ldloc, _fr); _il.Emit(OpCodes.Ldloc, _fd); _il.Emit(OpCodes.Clt_Un); Not();
                return true;
            case ConditionCode.be:
                EmitAddCarryOrZero();
                return true;
            case ConditionCode.a:
                EmitAddCarryOrZero();
                Not();
                return true;
        }
        return false;
    }

    /// <summary>After ADD: pushes CF | ZF (the carry: the masked sum below the first operand).</summary>
    private void EmitAddCarryOrZero()
    {
        _il.Emit(OpCodes.Ldloc, _fr); _il.Emit(OpCodes.Ldloc, _fd); _il.Emit(OpCodes.Clt_Un);
        _il.Emit(OpCodes.Ldloc, _fr); PushZero64(); _il.Emit(OpCodes.Ceq);
        _il.Emit(OpCodes.Or);
    }

    /// <summary>Pushes a flag local, sign-extended from the flag size when <paramref name="signed"/>.</summary>
    private void PushSized(LocalBuilder l, bool signed)
    {
        _il.Emit(OpCodes.Ldloc, l);
        if (signed) ConvSigned();
    }

    /// <summary>Sign-extends the int64 on the stack from the current flag size (8 bytes: unchanged).</summary>
    private void ConvSigned()
    {
        switch (_flagSize)
        {
            case 4: _il.Emit(OpCodes.Conv_I4); _il.Emit(OpCodes.Conv_I8); break;
            case 2: _il.Emit(OpCodes.Conv_I2); _il.Emit(OpCodes.Conv_I8); break;
            case 1: _il.Emit(OpCodes.Conv_I1); _il.Emit(OpCodes.Conv_I8); break;
        }
    }

    private void PushZero64()
    {
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Conv_I8);
    }

    private void Not()
    {
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Ceq);
    }
}
