using System.Reflection.Emit;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;

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
        EmitExitTo(_k + 1, i.NearBranch64);
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
        EmitExitTo(_k + 1, i.NearBranch64);
        return true;
    }

    private bool TryJcc(in Instruction i)
    {
        if (i.Op0Kind != OpKind.NearBranch64 || !SoftwareCpu.IsCanonical(i.NearBranch64)) return false;
        var target = i.NearBranch64;
        var next = i.NextIP;
        if (RegionMember(target) < 0 && RegionMember(next) < 0)
        {
            // Both ways leave the region: one exit, to next + condition × (target - next). Half the exits'
            // IL of a block that ends in a Jcc, and no branch for the .NET JIT to lay out.
            var rip = Temp();
            EmitConst(next);
            EmitCondition(i.ConditionCode);
            _il.Emit(OpCodes.Conv_U8);
            EmitConst(target - next);
            _il.Emit(OpCodes.Mul);
            _il.Emit(OpCodes.Add);
            _il.Emit(OpCodes.Stloc, rip);
            EmitExit(_k + 1, () => _il.Emit(OpCodes.Ldloc, rip));
            return true;
        }
        var notTaken = _il.DefineLabel();
        EmitCondition(i.ConditionCode);
        _il.Emit(OpCodes.Brfalse, notTaken);
        EmitExitTo(_k + 1, target);
        _il.MarkLabel(notTaken);
        EmitExitTo(_k + 1, next);
        return true;
    }

    // ---- branches between the blocks of a region ----

    private LocalBuilder? _entryTranslationEpoch, _entryCodeEpoch;

    /// <summary>The last instruction is a Jcc back to the block's first (a loop of one block).</summary>
    private bool EndsInSelfLoop()
    {
        ref readonly var last = ref _block.Instructions[_block.Count - 1];
        return last.IsJccShortOrNear && last.Op0Kind == OpKind.NearBranch64 && last.NearBranch64 == _block.StartRip;
    }

    /// <summary>
    /// Keeps the translation and code epochs the method was entered under. Every region block is in the entry
    /// block's page and was decoded from the same code version, and the run loop found the entry block valid
    /// just now; while neither epoch moves, a lookup at a region block's address would find that block.
    /// </summary>
    private void EmitEntryEpochs()
    {
        _entryTranslationEpoch = _il.DeclareLocal(typeof(int));
        _entryCodeEpoch = _il.DeclareLocal(typeof(int));
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, F.TranslationEpoch);
        _il.Emit(OpCodes.Stloc, _entryTranslationEpoch);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Call, F.Memory);
        _il.Emit(OpCodes.Call, F.CodeEpoch);
        _il.Emit(OpCodes.Stloc, _entryCodeEpoch);
    }

    /// <summary>The region block a constant target enters (<see cref="EmitExitTo"/> branches to it), or -1 when it leaves the region.</summary>
    private int RegionMember(ulong target) =>
        _entryTranslationEpoch is null ? -1 : Array.FindIndex(_region, b => b.StartRip == target);

    /// <summary>Leaves the block after <paramref name="executed"/> instructions for a constant target: into the region block there, if any.</summary>
    private void EmitExitTo(int executed, ulong target)
    {
        var m = RegionMember(target);
        if (m >= 0) EmitEdge(executed, target, m);
        else EmitExit(executed, () => EmitConst(target));
    }

    /// <summary>
    /// From this block into region block <paramref name="m"/>: the state goes to the CPU, as the target's
    /// code expects it; then the run loop's checks between blocks (kick, NMI, interrupt shadow, halt, a
    /// deliverable interrupt, the budget) and GetBlock's (64-bit mode, both epochs as at entry). Any that
    /// fails leaves as the exit would, so interrupts are taken at the same instructions as when each block
    /// was a run of its own.
    /// </summary>
    private void EmitEdge(int executed, ulong target, int m)
    {
        var leave = _il.DefineLabel();
        WriteBackRegisters(markClean: false);
        FlushFlags(markClean: false);
        AddInstructionCount(executed - _synced);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Volatile);
        _il.Emit(OpCodes.Ldfld, F.Kick);
        _il.Emit(OpCodes.Brtrue, leave);
        LeaveIfSet(F.NmiPending, leave);
        LeaveIfSet(F.InterruptShadow, leave);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Call, F.Halted);
        _il.Emit(OpCodes.Brtrue, leave);
        // if (cpu.RunLimit - cpu.InstructionCount < MaxBlockLength) leave
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, F.RunLimit);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, F.InstructionCount);
        _il.Emit(OpCodes.Sub);
        _il.Emit(OpCodes.Ldc_I8, (long)SoftwareCpu.MaxBlockLength);
        _il.Emit(OpCodes.Blt, leave);
        // if (cpu.Bitness != 64 || cpu.TranslationEpoch != entry || cpu.Memory.CodeEpoch != entry) leave
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Call, F.Bitness);
        EmitInt(64);
        _il.Emit(OpCodes.Bne_Un, leave);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, F.TranslationEpoch);
        _il.Emit(OpCodes.Ldloc, _entryTranslationEpoch!);
        _il.Emit(OpCodes.Bne_Un, leave);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Call, F.Memory);
        _il.Emit(OpCodes.Call, F.CodeEpoch);
        _il.Emit(OpCodes.Ldloc, _entryCodeEpoch!);
        _il.Emit(OpCodes.Bne_Un, leave);
        // if (cpu.InterruptDeliverable()) leave
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Call, F.InterruptDeliverable);
        _il.Emit(OpCodes.Brtrue, leave);
        _il.Emit(OpCodes.Br, _heads[m]);

        _il.MarkLabel(leave);
        _il.Emit(OpCodes.Ldarg_1);
        EmitConst(_block.Instructions[executed - 1].IP);
        _il.Emit(OpCodes.Stfld, F.CurrentIp);
        _il.Emit(OpCodes.Ldarg_1);
        EmitConst(target);
        _il.Emit(OpCodes.Stfld, F.Rip);
        EmitReturn();
    }

    /// <summary>Branches to <paramref name="leave"/> when the CPU's bool field <paramref name="flag"/> is set.</summary>
    private void LeaveIfSet(System.Reflection.FieldInfo flag, Label leave)
    {
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldfld, flag);
        _il.Emit(OpCodes.Brtrue, leave);
    }
}
