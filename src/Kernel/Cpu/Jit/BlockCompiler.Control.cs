using System.Reflection.Emit;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Jit;

/// <summary>
/// 64-bit PUSH/POP of registers and immediates, and near CALL/RET/JMP/Jcc with a constant target. A
/// branch ends the block: the compiled code sets RIP and returns to the run loop, which finds the next
/// block through the links it keeps. A constant target that is not canonical calls out, so the
/// interpreter raises the #GP.
/// </summary>
internal sealed partial class BlockCompiler
{
    private bool TryPush(in Instruction i)
    {
        if (i.StackPointerIncrement != -8) return false;
        var size = OperandBytes(in i, 0);
        if (i.Op0Kind == OpKind.Memory || size == 0) return false;
        // PUSH imm8/imm32 pushes the immediate sign-extended to 64 bits.
        var v = Fetch(in i, 0, 8);
        var sp = Temp();
        LoadReg(Gpr.RSP);
        EmitConst(8);
        _il.Emit(OpCodes.Sub);
        _il.Emit(OpCodes.Stloc, sp);
        // RSP changes only once the write succeeded.
        StoreAt(in i, sp, sp, Seg.SS, 8, v, () =>
        {
            _il.Emit(OpCodes.Ldloc, sp);
            StoreReg(Gpr.RSP);
        });
        return true;
    }

    private bool TryPop(in Instruction i)
    {
        if (i.StackPointerIncrement != 8 || i.Op0Kind != OpKind.Register) return false;
        if (!IsGpr(i.Op0Register, out var reg, out var size) || size != 8 || reg == Gpr.RSP) return false;
        var sp = Temp();
        LoadReg(Gpr.RSP);
        _il.Emit(OpCodes.Stloc, sp);
        var v = LoadAt(in i, sp, sp, Seg.SS, 8);
        _il.Emit(OpCodes.Ldloc, sp);
        EmitConst(8);
        _il.Emit(OpCodes.Add);
        StoreReg(Gpr.RSP);
        WriteRegister(reg, 8, v);
        return true;
    }

    private bool TryCall(in Instruction i)
    {
        if (i.Op0Kind != OpKind.NearBranch64 || !SoftwareCpu.IsCanonical(i.NearBranch64)) return false;
        var ret = Temp();
        EmitConst(i.NextIP);
        _il.Emit(OpCodes.Stloc, ret);
        var sp = Temp();
        LoadReg(Gpr.RSP);
        EmitConst(8);
        _il.Emit(OpCodes.Sub);
        _il.Emit(OpCodes.Stloc, sp);
        StoreAt(in i, sp, sp, Seg.SS, 8, ret, branches: true);
        _il.Emit(OpCodes.Ldloc, sp);
        StoreReg(Gpr.RSP);
        var target = i.NearBranch64;
        EmitExit(_k + 1, () => EmitConst(target));
        return true;
    }

    private bool TryRet(in Instruction i)
    {
        if (i.Code != Code.Retnq) return false;
        var sp = Temp();
        LoadReg(Gpr.RSP);
        _il.Emit(OpCodes.Stloc, sp);
        var target = LoadAt(in i, sp, sp, Seg.SS, 8);
        // A non-canonical return address faults on the RET, with RSP not yet moved.
        var ok = _il.DefineLabel();
        _il.Emit(OpCodes.Ldloc, target);
        _il.Emit(OpCodes.Call, F.IsCanonical);
        _il.Emit(OpCodes.Brtrue, ok);
        EmitSlowPathSync(in i);
        _il.Emit(OpCodes.Call, F.Runtime(nameof(JitRuntime.ThrowGeneral)));
        _il.MarkLabel(ok);
        _il.Emit(OpCodes.Ldloc, sp);
        EmitConst(8);
        _il.Emit(OpCodes.Add);
        StoreReg(Gpr.RSP);
        EmitExit(_k + 1, () => _il.Emit(OpCodes.Ldloc, target));
        return true;
    }

    private bool TryJmp(in Instruction i)
    {
        if (i.Op0Kind != OpKind.NearBranch64 || !SoftwareCpu.IsCanonical(i.NearBranch64)) return false;
        var target = i.NearBranch64;
        EmitExit(_k + 1, () => EmitConst(target));
        return true;
    }

    private bool TryJcc(in Instruction i)
    {
        if (i.Op0Kind != OpKind.NearBranch64 || !SoftwareCpu.IsCanonical(i.NearBranch64)) return false;
        var target = i.NearBranch64;
        var next = i.NextIP;
        var notTaken = _il.DefineLabel();
        EmitCondition(i.ConditionCode);
        _il.Emit(OpCodes.Brfalse, notTaken);
        EmitExit(_k + 1, () => EmitConst(target));
        _il.MarkLabel(notTaken);
        EmitExit(_k + 1, () => EmitConst(next));
        return true;
    }
}
