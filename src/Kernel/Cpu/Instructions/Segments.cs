using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// Segment-register loads and stores: MOV to/from Sreg, PUSH/POP Sreg, LDS/LES/LFS/LGS/LSS (SDM Vol. 2
/// MOV, POP, PUSH, LDS). The descriptor checks live in <see cref="SoftwareCpu.LoadSegment"/>.
/// </summary>
internal static unsafe class Segments
{
    public static void Register(Dispatch.HandlerTable t)
    {
        foreach (var c in (ReadOnlySpan<Code>)[Code.Mov_Sreg_rm16, Code.Mov_Sreg_r32m16, Code.Mov_Sreg_r64m16,
                     Code.Mov_rm16_Sreg, Code.Mov_r32m16_Sreg, Code.Mov_r64m16_Sreg])
            t.Set(c, &MovSegmentHandler);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Pushw_ES, Code.Pushd_ES, Code.Pushw_CS, Code.Pushd_CS, Code.Pushw_SS, Code.Pushd_SS,
                     Code.Pushw_DS, Code.Pushd_DS, Code.Pushw_FS, Code.Pushd_FS, Code.Pushq_FS, Code.Pushw_GS, Code.Pushd_GS, Code.Pushq_GS])
            t.Set(c, &PushSegmentHandler);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Popw_ES, Code.Popd_ES, Code.Popw_SS, Code.Popd_SS, Code.Popw_DS, Code.Popd_DS,
                     Code.Popw_FS, Code.Popd_FS, Code.Popq_FS, Code.Popw_GS, Code.Popd_GS, Code.Popq_GS])
            t.Set(c, &PopSegmentHandler);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Lds_r16_m1616, Code.Lds_r32_m1632, Code.Les_r16_m1616, Code.Les_r32_m1632,
                     Code.Lss_r16_m1616, Code.Lss_r32_m1632, Code.Lss_r64_m1664, Code.Lfs_r16_m1616, Code.Lfs_r32_m1632,
                     Code.Lfs_r64_m1664, Code.Lgs_r16_m1616, Code.Lgs_r32_m1632, Code.Lgs_r64_m1664])
            t.Set(c, &LoadFarPointer);
    }

    private static void MovSegmentHandler(SoftwareCpu cpu, in Instruction i) => MovSegment(cpu, in i);
    private static void PushSegmentHandler(SoftwareCpu cpu, in Instruction i) => PushSegment(cpu, in i);
    private static void PopSegmentHandler(SoftwareCpu cpu, in Instruction i) => PopSegment(cpu, in i);

    public static void MovSegment(SoftwareCpu cpu, in Instruction i)
    {
        if (i.Op0Kind == OpKind.Register && i.Op0Register.IsSegmentRegister())
        {
            var seg = SoftwareCpu.SegIndex(i.Op0Register);
            // CS changes only through far transfers.
            if (seg == Seg.CS) throw CpuFault.InvalidOpcode();
            var selector = (ushort)cpu.ReadOperand(in i, 1);
            cpu.LoadSegment(seg, selector);
            if (seg == Seg.SS) BeginStackShadow(cpu);
            return;
        }
        // MOV r/m, Sreg: a register destination gets the selector zero-extended, memory gets 16 bits.
        var value = cpu.Segs[SoftwareCpu.SegIndex(i.Op1Register)].Selector;
        if (i.Op0Kind == OpKind.Register) cpu.WriteGpr(i.Op0Register, value);
        else cpu.WriteOperand(in i, 0, value);
    }

    /// <summary>
    /// MOV SS and POP SS hold off interrupts (and debug traps) for one instruction, so the MOV ESP that
    /// follows runs before any handler can see a half-switched stack (SDM MOV, 6.8.3).
    /// </summary>
    private static void BeginStackShadow(SoftwareCpu cpu)
    {
        cpu.InterruptShadow = true;
        cpu.EndBlock = true;
    }

    public static void PushSegment(SoftwareCpu cpu, in Instruction i)
    {
        var size = -i.StackPointerIncrement;
        var selector = cpu.Segs[SoftwareCpu.SegIndex(i.Op0Register)].Selector;
        if (size == 2)
        {
            cpu.Push(selector, 2);
            return;
        }
        // With a 32/64-bit operand, recent Intel cores write only the low 16 bits of the slot (SDM PUSH).
        var rsp = cpu.Gprs[Gpr.RSP];
        var newSp = cpu.StackAddressSize switch { 8 => rsp - (ulong)size, 4 => (uint)(rsp - (ulong)size), _ => (ushort)(rsp - (ulong)size) };
        var la = cpu.SegmentedAddress(Seg.SS, newSp, size, AccessKind.Write);
        cpu.WriteLinear(la, 2, selector);
        cpu.SetStackPointer(newSp);
    }

    public static void PopSegment(SoftwareCpu cpu, in Instruction i)
    {
        var seg = SoftwareCpu.SegIndex(i.Op0Register);
        if (seg == Seg.CS) throw CpuFault.InvalidOpcode();
        var size = i.StackPointerIncrement;
        var selector = (ushort)cpu.PeekStack(0, size);
        // RSP moves with the stack size in force before the load (POP SS may change SS.B).
        var rsp = cpu.Gprs[Gpr.RSP];
        var newSp = cpu.StackAddressSize switch
        {
            8 => rsp + (ulong)size,
            4 => (uint)(rsp + (ulong)size),
            _ => (rsp & ~0xFFFFUL) | (ushort)(rsp + (ulong)size),
        };
        cpu.LoadSegment(seg, selector);
        cpu.Gprs[Gpr.RSP] = newSp;
        if (seg == Seg.SS) BeginStackShadow(cpu);
    }

    /// <summary>LDS, LES, LFS, LGS, LSS: a far pointer from memory into Sreg:reg; the segment loads first.</summary>
    private static void LoadFarPointer(SoftwareCpu cpu, in Instruction i)
    {
        var seg = i.Mnemonic switch
        {
            Mnemonic.Lds => Seg.DS,
            Mnemonic.Les => Seg.ES,
            Mnemonic.Lss => Seg.SS,
            Mnemonic.Lfs => Seg.FS,
            _ => Seg.GS,
        };
        var size = i.MemorySize switch { MemorySize.SegPtr16 => 2, MemorySize.SegPtr32 => 4, _ => 8 };
        var la = cpu.MemoryLinear(in i, size + 2, AccessKind.Read);
        var offset = cpu.ReadLinear(la, size);
        var selector = (ushort)cpu.ReadLinear(la + (ulong)size, 2);
        cpu.LoadSegment(seg, selector);
        cpu.WriteGpr(i.Op0Register, offset);
    }
}
