using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>PUSH, POP, PUSHA/POPA, ENTER, LEAVE (PUSHF/POPF live with the flag instructions).</summary>
internal static unsafe class Stack
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Push, &Push);
        t.Set(Mnemonic.Pop, &Pop);
        t.Set(Mnemonic.Pusha, &Pusha);
        t.Set(Mnemonic.Pushad, &Pusha);
        t.Set(Mnemonic.Popa, &Popa);
        t.Set(Mnemonic.Popad, &Popa);
        t.Set(Mnemonic.Enter, &Enter);
        t.Set(Mnemonic.Leave, &Leave);
    }

    /// <summary>An address on the stack, wrapped to the stack-address size.</summary>
    private static ulong StackOffset(SoftwareCpu cpu, ulong offset) => cpu.StackAddressSize switch
    {
        8 => offset,
        4 => (uint)offset,
        _ => (ushort)offset,
    };

    /// <summary>
    /// PUSHA/PUSHAD: AX, CX, DX, BX, the original SP, BP, SI, DI. All eight stores happen before SP moves,
    /// so a fault leaves SP as it was. Not in 64-bit mode.
    /// </summary>
    private static void Pusha(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Is64) throw CpuFault.InvalidOpcode();
        var size = i.Code == Code.Pushaw ? 2 : 4;
        var sp = cpu.Gprs[Gpr.RSP];
        for (var r = 0; r < 8; r++)
            cpu.WriteMem(Seg.SS, StackOffset(cpu, sp - (ulong)(size * (r + 1))), size, cpu.Gprs[r]);
        cpu.SetStackPointer(sp - (ulong)(8 * size));
    }

    /// <summary>POPA/POPAD: DI, SI, BP, (SP skipped), BX, DX, CX, AX; all read before any register changes.</summary>
    private static void Popa(SoftwareCpu cpu, in Instruction i)
    {
        if (cpu.Is64) throw CpuFault.InvalidOpcode();
        var size = i.Code == Code.Popaw ? 2 : 4;
        Span<ulong> v = stackalloc ulong[8];
        for (var k = 0; k < 8; k++) v[k] = cpu.PeekStack((ulong)(k * size), size);
        var sp = cpu.Gprs[Gpr.RSP];
        for (var k = 0; k < 8; k++)
        {
            var r = 7 - k;
            if (r == Gpr.RSP) continue;
            if (size == 2) cpu.Gprs[r] = (cpu.Gprs[r] & ~0xFFFFUL) | v[k];
            else cpu.Gprs[r] = v[k];
        }
        cpu.SetStackPointer(sp + (ulong)(8 * size));
    }

    /// <summary>
    /// ENTER imm16, imm8 (SDM Vol. 2A, ENTER): push BP, copy (level - 1) frame pointers from the enclosing
    /// frame, push the new frame pointer, then BP := frame and SP -= imm16. Memory is written first; BP and
    /// SP change only once everything succeeded, including a write check at the final stack pointer.
    /// </summary>
    private static void Enter(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.Code switch { Code.Enterw_imm16_imm8 => 2, Code.Enterd_imm16_imm8 => 4, _ => 8 };
        var alloc = (ulong)i.Immediate16;
        var level = i.Immediate8_2nd & 31;
        var sp = cpu.Gprs[Gpr.RSP];
        var bp = cpu.Gprs[Gpr.RBP];

        sp -= (ulong)size;
        cpu.WriteMem(Seg.SS, StackOffset(cpu, sp), size, bp);
        var frame = StackOffset(cpu, sp);
        if (level > 0)
        {
            // The enclosing frames' pointers are read through BP with the stack-address size.
            for (var k = 1; k < level; k++)
            {
                bp -= (ulong)size;
                var v = cpu.ReadMem(Seg.SS, StackOffset(cpu, bp), size);
                sp -= (ulong)size;
                cpu.WriteMem(Seg.SS, StackOffset(cpu, sp), size, v);
            }
            sp -= (ulong)size;
            cpu.WriteMem(Seg.SS, StackOffset(cpu, sp), size, frame);
        }
        var newSp = StackOffset(cpu, sp - alloc);
        // The final stack pointer must be writable (as if the next push happened there).
        var la = cpu.SegmentedAddress(Seg.SS, newSp, 1, AccessKind.Write);
        cpu.Translate(la, AccessKind.Write, cpu.Cpl == 3);

        cpu.WriteGpr(size == 2 ? Iced.Intel.Register.BP : size == 4 ? Iced.Intel.Register.EBP : Iced.Intel.Register.RBP, frame);
        cpu.SetStackPointer(newSp);
    }

    /// <summary>LEAVE: SP := BP (stack-address size), then BP := pop (operand size).</summary>
    private static void Leave(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.Code switch { Code.Leavew => 2, Code.Leaved => 4, _ => 8 };
        var bp = StackOffset(cpu, cpu.Gprs[Gpr.RBP]);
        var v = cpu.ReadMem(Seg.SS, bp, size);
        cpu.SetStackPointer(bp + (ulong)size);
        cpu.WriteGpr(size == 2 ? Iced.Intel.Register.BP : size == 4 ? Iced.Intel.Register.EBP : Iced.Intel.Register.RBP, v);
    }

    // PUSH/POP Sreg are registered by Segments.
    private static void Push(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.StackPointerIncrement < 0 ? -i.StackPointerIncrement : SoftwareCpu.OperandSize(in i, 0);
        var v = cpu.ReadOperand(in i, 0);
        cpu.Push(v, size);
    }

    private static void Pop(SoftwareCpu cpu, in Instruction i)
    {
        var size = i.StackPointerIncrement;
        var v = cpu.PeekStack(0, size);
        // POP [rsp+x] computes its address with RSP already incremented (SDM POP).
        var oldSp = cpu.Gprs[Gpr.RSP];
        cpu.SetStackPointer(oldSp + (ulong)size);
        try { cpu.WriteOperand(in i, 0, v); }
        catch (CpuFault) { cpu.Gprs[Gpr.RSP] = oldSp; throw; }
    }
}
