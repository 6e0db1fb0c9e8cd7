using System.Reflection.Emit;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Jit;

/// <summary>
/// The instructions translated inline: MOV, LEA, the ALU group, INC/DEC/NEG/NOT, shifts by a constant,
/// IMUL, MOVZX/MOVSX/MOVSXD, CMOVcc, SETcc, PUSH/POP, near CALL/RET/JMP/Jcc and NOP, at the operand sizes
/// and forms listed in each emitter. Each emitter decides first, emits after: a form it does not take
/// emits nothing and falls back to a call-out. Each computes what the interpreter's handler computes and
/// records the same lazy flags (the operation and the operands, masked to the operand size).
/// </summary>
internal sealed partial class BlockCompiler
{
    private bool TryEmitInline(in Instruction i, out bool ended)
    {
        ended = false;
        _tempsInUse = 0;
        if (i.HasLockPrefix || i.HasRepPrefix || i.HasRepnePrefix) return false;
        switch (i.Mnemonic)
        {
            case Mnemonic.Mov: return TryMov(in i);
            case Mnemonic.Lea: return TryLea(in i);
            case Mnemonic.Add or Mnemonic.Sub or Mnemonic.And or Mnemonic.Or or Mnemonic.Xor or Mnemonic.Adc or Mnemonic.Sbb or
                Mnemonic.Cmp or Mnemonic.Test:
                return TryAlu(in i);
            case Mnemonic.Inc or Mnemonic.Dec or Mnemonic.Neg or Mnemonic.Not: return TryUnary(in i);
            case Mnemonic.Shl or Mnemonic.Shr or Mnemonic.Sar: return TryShift(in i);
            case Mnemonic.Rol or Mnemonic.Ror: return TryRotate(in i);
            case Mnemonic.Imul: return TryImul(in i);
            case Mnemonic.Movzx or Mnemonic.Movsx or Mnemonic.Movsxd: return TryExtend(in i);
            case Mnemonic.Nop: return true;
            case Mnemonic.Push: return TryPush(in i);
            case Mnemonic.Pop: return TryPop(in i);
            case Mnemonic.Call: return ended = TryCall(in i);
            case Mnemonic.Ret: return ended = TryRet(in i);
            case Mnemonic.Jmp: return ended = TryJmp(in i);
        }
        if (i.IsJccShortOrNear) return ended = TryJcc(in i);
        if (Instructions.ConditionForms.IsCmovcc(i.Mnemonic)) return TryCmov(in i);
        if (Instructions.ConditionForms.IsSetcc(i.Mnemonic)) return TrySetcc(in i);
        return false;
    }

    // ---- MOV, LEA, MOVZX/MOVSX ----

    private bool TryMov(in Instruction i)
    {
        var size = OperandBytes(in i, 0);
        if (size == 0 || OperandBytes(in i, 1) == 0) return false;
        if (i.Op0Kind == OpKind.Register)
        {
            IsGpr(i.Op0Register, out var d, out _);
            var v = Fetch(in i, 1, size);
            WriteRegister(d, size, v);
            return true;
        }
        if (i.Op1Kind == OpKind.Memory) return false;
        var value = Fetch(in i, 1, size);
        var (ea, la, seg) = EmitAddress(in i);
        StoreAt(in i, ea, la, seg, size, value);
        return true;
    }

    private bool TryLea(in Instruction i)
    {
        if (i.Op1Kind != OpKind.Memory || !AddressOk(in i) || !IsGpr(i.Op0Register, out var d, out var size) || size < 4) return false;
        var t = Temp();
        EmitEffectiveAddress(in i);
        _il.Emit(OpCodes.Stloc, t);
        WriteRegister(d, size, t);
        return true;
    }

    private bool TryExtend(in Instruction i)
    {
        if (!IsGpr(i.Op0Register, out var d, out var dsize) || dsize < 4) return false;
        var ssize = OperandBytes(in i, 1);
        if (ssize is 0 or 8 || ssize >= dsize) return false;
        var v = Fetch(in i, 1, ssize);
        if (i.Mnemonic != Mnemonic.Movzx)
        {
            _il.Emit(OpCodes.Ldloc, v);
            _il.Emit(ssize == 1 ? OpCodes.Conv_I1 : ssize == 2 ? OpCodes.Conv_I2 : OpCodes.Conv_I4);
            _il.Emit(OpCodes.Conv_I8);
            _il.Emit(OpCodes.Stloc, v);
        }
        WriteRegister(d, dsize, v);
        return true;
    }

    // ---- ALU ----

    private bool TryAlu(in Instruction i)
    {
        var compare = i.Mnemonic is Mnemonic.Cmp or Mnemonic.Test;
        var size = OperandBytes(in i, 0);
        if (size == 0 || OperandBytes(in i, 1) == 0) return false;
        // 32/64-bit everything; 8-bit compares (common in kernel code), which write no register.
        if (!(size is 4 or 8 || (size == 1 && compare))) return false;
        if (i.Op0Kind == OpKind.Memory && !compare) return false;

        var s = Fetch(in i, 1, size);
        var d = Fetch(in i, 0, size);
        LocalBuilder? carry = null;
        if (i.Mnemonic is Mnemonic.Adc or Mnemonic.Sbb)
        {
            carry = Temp();
            EmitCarry();
            _il.Emit(OpCodes.Stloc, carry);
        }
        var r = Temp();
        _il.Emit(OpCodes.Ldloc, d);
        _il.Emit(OpCodes.Ldloc, s);
        FlagOp op;
        switch (i.Mnemonic)
        {
            case Mnemonic.Add: _il.Emit(OpCodes.Add); op = FlagOp.Add; break;
            case Mnemonic.Adc: _il.Emit(OpCodes.Add); _il.Emit(OpCodes.Ldloc, carry!); _il.Emit(OpCodes.Add); op = FlagOp.Adc; break;
            case Mnemonic.Sub or Mnemonic.Cmp: _il.Emit(OpCodes.Sub); op = FlagOp.Sub; break;
            case Mnemonic.Sbb: _il.Emit(OpCodes.Sub); _il.Emit(OpCodes.Ldloc, carry!); _il.Emit(OpCodes.Sub); op = FlagOp.Sbb; break;
            case Mnemonic.And or Mnemonic.Test: _il.Emit(OpCodes.And); op = FlagOp.Logic; break;
            case Mnemonic.Or: _il.Emit(OpCodes.Or); op = FlagOp.Logic; break;
            default: _il.Emit(OpCodes.Xor); op = FlagOp.Logic; break;
        }
        Truncate(size);
        _il.Emit(OpCodes.Stloc, r);
        if (!compare)
        {
            IsGpr(i.Op0Register, out var dr, out _);
            WriteRegister(dr, size, r);
        }
        CopyTo(_fd, d);
        CopyTo(_fs, s);
        CopyTo(_fr, r);
        if (carry is not null) CopyTo(_fa, carry); // the carry-in, as FlagsArith.CF (bit 0)
        SetFlags(op, size);
        return true;
    }

    private void CopyTo(LocalBuilder dest, LocalBuilder src)
    {
        _il.Emit(OpCodes.Ldloc, src);
        _il.Emit(OpCodes.Stloc, dest);
    }

    private bool TryUnary(in Instruction i)
    {
        if (i.Op0Kind != OpKind.Register || !IsGpr(i.Op0Register, out var reg, out var size) || size < 4) return false;
        var d = Fetch(in i, 0, size);
        var r = Temp();
        switch (i.Mnemonic)
        {
            case Mnemonic.Inc or Mnemonic.Dec:
                // CF survives INC/DEC: keep the one found, as SetLazyIncDec does.
                EmitCarry();
                _il.Emit(OpCodes.Stloc, _fa);
                _il.Emit(OpCodes.Ldloc, d);
                EmitConst(1);
                _il.Emit(i.Mnemonic == Mnemonic.Inc ? OpCodes.Add : OpCodes.Sub);
                Truncate(size);
                _il.Emit(OpCodes.Stloc, r);
                CopyTo(_fd, d);
                EmitConst(1);
                _il.Emit(OpCodes.Stloc, _fs);
                CopyTo(_fr, r);
                SetFlags(i.Mnemonic == Mnemonic.Inc ? FlagOp.Inc : FlagOp.Dec, size);
                break;
            case Mnemonic.Neg:
                // Recorded as SUB 0 - d.
                EmitConst(0);
                _il.Emit(OpCodes.Ldloc, d);
                _il.Emit(OpCodes.Sub);
                Truncate(size);
                _il.Emit(OpCodes.Stloc, r);
                EmitConst(0);
                _il.Emit(OpCodes.Stloc, _fd);
                CopyTo(_fs, d);
                CopyTo(_fr, r);
                SetFlags(FlagOp.Sub, size);
                break;
            default:
                _il.Emit(OpCodes.Ldloc, d);
                _il.Emit(OpCodes.Not);
                Truncate(size);
                _il.Emit(OpCodes.Stloc, r);
                break;
        }
        WriteRegister(reg, size, r);
        return true;
    }

    private bool TryShift(in Instruction i)
    {
        if (i.Op0Kind != OpKind.Register || !IsGpr(i.Op0Register, out var reg, out var size) || size < 4) return false;
        if (i.Op1Kind != OpKind.Immediate8) return false;
        var count = i.Immediate8 & (size == 8 ? 63 : 31);
        // A zero count changes nothing, not even the flags; the interpreter's path handles it.
        if (count == 0) return false;
        var d = Fetch(in i, 0, size);
        var r = Temp();
        _il.Emit(OpCodes.Ldloc, d);
        FlagOp op;
        switch (i.Mnemonic)
        {
            case Mnemonic.Shl: EmitInt(count); _il.Emit(OpCodes.Shl); op = FlagOp.Shl; break;
            case Mnemonic.Shr: EmitInt(count); _il.Emit(OpCodes.Shr_Un); op = FlagOp.Shr; break;
            default:
                if (size == 4) { _il.Emit(OpCodes.Conv_I4); _il.Emit(OpCodes.Conv_I8); }
                EmitInt(count);
                _il.Emit(OpCodes.Shr);
                op = FlagOp.Sar;
                break;
        }
        Truncate(size);
        _il.Emit(OpCodes.Stloc, r);
        WriteRegister(reg, size, r);
        CopyTo(_fd, d);
        EmitConst((ulong)count);
        _il.Emit(OpCodes.Stloc, _fs);
        CopyTo(_fr, r);
        SetFlags(op, size);
        return true;
    }

    /// <summary>
    /// ROL/ROR of a 32- or 64-bit register by a constant: the rotated value, and CF and OF as the interpreter sets them
    /// (ROL: CF = LSB, OF = MSB xor CF; ROR: CF = MSB, OF = the two top bits differ), left pending over the flags
    /// before (<see cref="_pendingCarry"/>). Hash and cipher loops (the kernel's BLAKE2s and ChaCha) are made of these.
    /// </summary>
    private bool TryRotate(in Instruction i)
    {
        if (i.Op0Kind != OpKind.Register || !IsGpr(i.Op0Register, out var reg, out var size) || size < 4) return false;
        if (i.Op1Kind != OpKind.Immediate8) return false;
        var count = i.Immediate8 & (size == 8 ? 63 : 31);
        // A zero count changes nothing, not even the flags; the interpreter's path handles it.
        if (count == 0) return false;
        var left = i.Mnemonic == Mnemonic.Rol;
        var bits = size * 8;
        var d = Fetch(in i, 0, size);
        var r = Temp();
        // (d << n | d >> (bits - n)) at the operand's width; the .NET JIT turns it into one rotate.
        _il.Emit(OpCodes.Ldloc, d);
        if (size == 4) _il.Emit(OpCodes.Conv_U4);
        EmitInt(left ? count : bits - count);
        _il.Emit(OpCodes.Shl);
        _il.Emit(OpCodes.Ldloc, d);
        if (size == 4) _il.Emit(OpCodes.Conv_U4);
        EmitInt(left ? bits - count : count);
        _il.Emit(OpCodes.Shr_Un);
        _il.Emit(OpCodes.Or);
        if (size == 4) _il.Emit(OpCodes.Conv_U8);
        _il.Emit(OpCodes.Stloc, r);
        WriteRegister(reg, size, r);
        var carry = _rotateCarryLocal ??= _il.DeclareLocal(typeof(bool));
        var overflow = _rotateOverflowLocal ??= _il.DeclareLocal(typeof(bool));
        // CF: bit 0 (ROL) or the top bit (ROR) of the result.
        EmitBit(r, left ? 0 : bits - 1);
        _il.Emit(OpCodes.Stloc, carry);
        // OF: top bit xor CF (ROL), or top bit xor the bit below it (ROR).
        EmitBit(r, bits - 1);
        if (left) _il.Emit(OpCodes.Ldloc, carry);
        else EmitBit(r, bits - 2);
        _il.Emit(OpCodes.Xor);
        _il.Emit(OpCodes.Stloc, overflow);
        _pendingCarry = carry;
        _pendingOverflow = overflow;
        return true;
    }

    /// <summary>Pushes bit <paramref name="bit"/> of a ulong local as an int 0 or 1.</summary>
    private void EmitBit(LocalBuilder value, int bit)
    {
        _il.Emit(OpCodes.Ldloc, value);
        EmitInt(bit);
        _il.Emit(OpCodes.Shr_Un);
        _il.Emit(OpCodes.Conv_I4);
        _il.Emit(OpCodes.Ldc_I4_1);
        _il.Emit(OpCodes.And);
    }

    /// <summary>IMUL r, r/m and IMUL r, r/m, imm at 32/64 bits (the one-operand form writes RDX:RAX and calls out).</summary>
    private bool TryImul(in Instruction i)
    {
        if (i.OpCount is not (2 or 3) || !IsGpr(i.Op0Register, out var reg, out var size) || size < 4) return false;
        if (OperandBytes(in i, 1) != size) return false;
        if (i.OpCount == 3 && !Immediate(in i, 2, size, out _)) return false;
        var a = Fetch(in i, i.OpCount == 3 ? 1 : 0, size);
        var b = Fetch(in i, i.OpCount == 3 ? 2 : 1, size);
        var low = Temp();
        var overflow = _mulOverflowLocal ??= _il.DeclareLocal(typeof(bool));
        if (size == 8)
        {
            _il.Emit(OpCodes.Ldloc, a);
            _il.Emit(OpCodes.Ldloc, b);
            _il.Emit(OpCodes.Ldloca, low);
            _il.Emit(OpCodes.Call, F.Runtime(nameof(JitRuntime.Multiply64)));
            _il.Emit(OpCodes.Stloc, overflow);
        }
        else
        {
            // p = (long)(int)a * (int)b; overflow when p does not fit 32 bits signed.
            var p = Temp();
            _il.Emit(OpCodes.Ldloc, a);
            _il.Emit(OpCodes.Conv_I4);
            _il.Emit(OpCodes.Conv_I8);
            _il.Emit(OpCodes.Ldloc, b);
            _il.Emit(OpCodes.Conv_I4);
            _il.Emit(OpCodes.Conv_I8);
            _il.Emit(OpCodes.Mul);
            _il.Emit(OpCodes.Stloc, p);
            _il.Emit(OpCodes.Ldloc, p);
            _il.Emit(OpCodes.Conv_I4);
            _il.Emit(OpCodes.Conv_I8);
            _il.Emit(OpCodes.Ldloc, p);
            _il.Emit(OpCodes.Ceq);
            Not();
            _il.Emit(OpCodes.Stloc, overflow);
            _il.Emit(OpCodes.Ldloc, p);
            Truncate(4);
            _il.Emit(OpCodes.Stloc, low);
        }
        WriteRegister(reg, size, low);
        // CF = OF = overflow over the flags before (see _pendingCarry); computed where they are read or saved.
        _pendingCarry = _pendingOverflow = overflow;
        return true;
    }

    // ---- conditions ----

    private bool TryCmov(in Instruction i)
    {
        if (!IsGpr(i.Op0Register, out var reg, out var size) || size < 4 || OperandBytes(in i, 1) != size) return false;
        // The source is read (and may fault) whatever the condition.
        var v = Fetch(in i, 1, size);
        var old = Fetch(in i, 0, size);
        var r = Temp();
        var take = _il.DefineLabel();
        var done = _il.DefineLabel();
        EmitCondition(i.ConditionCode);
        _il.Emit(OpCodes.Brtrue, take);
        _il.Emit(OpCodes.Ldloc, old);
        _il.Emit(OpCodes.Br, done);
        _il.MarkLabel(take);
        _il.Emit(OpCodes.Ldloc, v);
        _il.MarkLabel(done);
        _il.Emit(OpCodes.Stloc, r);
        // 64-bit: unchanged when false; 32-bit: written (zero-extended) either way. The old value is
        // already zero-extended from 32 bits, so one write covers both.
        WriteRegister(reg, size, r);
        return true;
    }

    private bool TrySetcc(in Instruction i)
    {
        if (i.Op0Kind != OpKind.Register || !IsGpr(i.Op0Register, out var reg, out var size) || size != 1) return false;
        var c = Temp();
        EmitCondition(i.ConditionCode);
        _il.Emit(OpCodes.Conv_U8);
        _il.Emit(OpCodes.Stloc, c);
        WriteRegister(reg, 1, c);
        return true;
    }
}
