using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// The descriptor-table instructions: LGDT/LIDT/SGDT/SIDT, LLDT/SLDT, LTR/STR, and the selector probes
/// LAR/LSL/VERR/VERW/ARPL (SDM Vol. 2; Vol. 3A 2.4, 5.10).
/// </summary>
internal static unsafe class DescriptorTableInstructions
{
    public static void Register(Dispatch.HandlerTable t)
    {
        foreach (var c in (ReadOnlySpan<Code>)[Code.Lgdt_m1632_16, Code.Lgdt_m1632, Code.Lgdt_m1664]) t.Set(c, &Lgdt);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Lidt_m1632_16, Code.Lidt_m1632, Code.Lidt_m1664]) t.Set(c, &Lidt);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Sgdt_m1632_16, Code.Sgdt_m1632, Code.Sgdt_m1664]) t.Set(c, &Sgdt);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Sidt_m1632_16, Code.Sidt_m1632, Code.Sidt_m1664]) t.Set(c, &Sidt);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Lldt_rm16, Code.Lldt_r32m16, Code.Lldt_r64m16]) t.Set(c, &Lldt);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Sldt_rm16, Code.Sldt_r32m16, Code.Sldt_r64m16]) t.Set(c, &Sldt);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Ltr_rm16, Code.Ltr_r32m16, Code.Ltr_r64m16]) t.Set(c, &Ltr);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Str_rm16, Code.Str_r32m16, Code.Str_r64m16]) t.Set(c, &Str);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Lar_r16_rm16, Code.Lar_r32_r32m16, Code.Lar_r64_r64m16]) t.Set(c, &Lar);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Lsl_r16_rm16, Code.Lsl_r32_r32m16, Code.Lsl_r64_r64m16]) t.Set(c, &Lsl);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Verr_rm16, Code.Verr_r32m16, Code.Verr_r64m16]) t.Set(c, &Verr);
        foreach (var c in (ReadOnlySpan<Code>)[Code.Verw_rm16, Code.Verw_r32m16, Code.Verw_r64m16]) t.Set(c, &Verw);
        t.Set(Code.Arpl_rm16_r16, &Arpl);
        t.Set(Code.Arpl_r32m16_r32, &Arpl);
    }

    // ---- GDTR / IDTR ----

    private static void RequireCpl0(SoftwareCpu cpu)
    {
        if (cpu.ProtectedMode && cpu.Cpl != 0) throw CpuFault.General(0);
    }

    /// <summary>Reads the limit:base pseudo-descriptor LGDT/LIDT take (a 16-bit operand keeps 24 base bits).</summary>
    private static DescriptorTable ReadPseudoDescriptor(SoftwareCpu cpu, in Instruction i)
    {
        RequireCpl0(cpu);
        var baseSize = cpu.Is64 ? 8 : 4;
        var la = cpu.MemoryLinear(in i, 2 + baseSize, AccessKind.Read);
        var limit = (ushort)cpu.ReadLinear(la, 2);
        var bas = cpu.ReadLinear(la + 2, baseSize);
        if (i.Code is Code.Lgdt_m1632_16 or Code.Lidt_m1632_16) bas &= 0xFF_FFFF;
        return new DescriptorTable { Base = bas, Limit = limit };
    }

    private static void Lgdt(SoftwareCpu cpu, in Instruction i) => cpu.Gdtr = ReadPseudoDescriptor(cpu, in i);

    private static void Lidt(SoftwareCpu cpu, in Instruction i) => cpu.Idtr = ReadPseudoDescriptor(cpu, in i);

    /// <summary>SGDT/SIDT store the limit and 32 base bits (64 in 64-bit mode) whatever the operand size.</summary>
    private static void StorePseudoDescriptor(SoftwareCpu cpu, in Instruction i, DescriptorTable table)
    {
        var baseSize = cpu.Is64 ? 8 : 4;
        var la = cpu.MemoryLinear(in i, 2 + baseSize, AccessKind.Write);
        cpu.WriteLinear(la, 2, table.Limit);
        cpu.WriteLinear(la + 2, baseSize, baseSize == 4 ? (uint)table.Base : table.Base);
    }

    private static void Sgdt(SoftwareCpu cpu, in Instruction i) => StorePseudoDescriptor(cpu, in i, cpu.Gdtr);

    private static void Sidt(SoftwareCpu cpu, in Instruction i) => StorePseudoDescriptor(cpu, in i, cpu.Idtr);

    // ---- LDTR / TR ----

    /// <summary>LLDT, SLDT, LTR, STR and the selector probes exist only in protected mode proper.</summary>
    private static void RequireProtectedMode(SoftwareCpu cpu)
    {
        if (!cpu.ProtectedMode || cpu.V86Mode) throw CpuFault.InvalidOpcode();
    }

    private static ushort SelectorOperand(SoftwareCpu cpu, in Instruction i, int op) => (ushort)cpu.ReadOperand(in i, op);

    private static void Lldt(SoftwareCpu cpu, in Instruction i)
    {
        RequireProtectedMode(cpu);
        RequireCpl0(cpu);
        var selector = SelectorOperand(cpu, in i, 0);
        if (SoftwareCpu.IsNullSelector(selector))
        {
            // A null LDTR is allowed; any later LDT reference faults.
            cpu.Ldtr = SoftwareCpu.NullSegment(selector);
            return;
        }
        var err = SoftwareCpu.SelectorError(selector);
        if ((selector & 4) != 0) throw CpuFault.General(err);
        var wide = cpu.LongModeActive;
        var d = cpu.ReadDescriptor(selector, out _, wide);
        if (!d.IsSystem || d.Type != SystemType.Ldt) throw CpuFault.General(err);
        if (wide && ((d.High >> 40) & 0x1F) != 0) throw CpuFault.General(err);
        if (!d.Present) throw CpuFault.NotPresent(err);
        cpu.Ldtr = d.ToSegment(selector);
    }

    private static void Ltr(SoftwareCpu cpu, in Instruction i)
    {
        RequireProtectedMode(cpu);
        RequireCpl0(cpu);
        var selector = SelectorOperand(cpu, in i, 0);
        if (SoftwareCpu.IsNullSelector(selector)) throw CpuFault.General(0);
        var err = SoftwareCpu.SelectorError(selector);
        if ((selector & 4) != 0) throw CpuFault.General(err);
        var wide = cpu.LongModeActive;
        var d = cpu.ReadDescriptor(selector, out var address, wide);
        // Only an available TSS loads (a 16-bit one only outside IA-32e mode).
        var available = d.IsSystem && (d.Type == SystemType.Tss32Available || (!wide && d.Type == SystemType.Tss16Available));
        if (!available) throw CpuFault.General(err);
        if (wide && ((d.High >> 40) & 0x1F) != 0) throw CpuFault.General(err);
        if (!d.Present) throw CpuFault.NotPresent(err);
        // Mark it busy in the GDT, as hardware does, so it cannot be loaded or switched to twice.
        cpu.WriteSystem(address + 5, 1, ((d.Raw >> 40) & 0xFF) | 2);
        var busy = new Descriptor(d.Raw | (2UL << 40), d.High);
        cpu.Tr = busy.ToSegment(selector);
    }

    private static void Sldt(SoftwareCpu cpu, in Instruction i)
    {
        RequireProtectedMode(cpu);
        cpu.WriteOperand(in i, 0, cpu.Ldtr.Selector);
    }

    private static void Str(SoftwareCpu cpu, in Instruction i)
    {
        RequireProtectedMode(cpu);
        cpu.WriteOperand(in i, 0, cpu.Tr.Selector);
    }

    // ---- LAR / LSL / VERR / VERW / ARPL ----

    private static void SetZf(SoftwareCpu cpu, bool zf)
    {
        var f = cpu.GetFlags() & RFlags.Arith;
        cpu.SetArithFlags(zf ? f | RFlags.ZF : f & ~RFlags.ZF);
    }

    /// <summary>
    /// The descriptor a probe instruction looks at, if it may see it: in the table, and for anything but
    /// conforming code, DPL ≥ CPL and DPL ≥ RPL (SDM LAR "Operation"). Never faults on a bad selector.
    /// </summary>
    private static bool TryProbe(SoftwareCpu cpu, ushort selector, out Descriptor d)
    {
        d = default;
        if (SoftwareCpu.IsNullSelector(selector)) return false;
        if (!cpu.TryReadDescriptor(selector, out d, out _)) return false;
        // System descriptors are 16 bytes in IA-32e mode; the probe needs the whole of one.
        if (d.IsSystem && cpu.LongModeActive && !cpu.TryReadDescriptor(selector, out d, out _, wide: true)) return false;
        if (d.IsConforming) return true;
        return d.Dpl >= cpu.Cpl && d.Dpl >= (selector & 3);
    }

    private static bool LarType(SoftwareCpu cpu, in Descriptor d)
    {
        if (!d.IsSystem) return true;
        return cpu.LongModeActive
            ? d.Type is SystemType.Ldt or SystemType.Tss32Available or SystemType.Tss32Busy or SystemType.CallGate32
            : d.Type is SystemType.Tss16Available or SystemType.Ldt or SystemType.Tss16Busy or SystemType.CallGate16
                or SystemType.TaskGate or SystemType.Tss32Available or SystemType.Tss32Busy or SystemType.CallGate32;
    }

    private static bool LslType(SoftwareCpu cpu, in Descriptor d)
    {
        if (!d.IsSystem) return true;
        return cpu.LongModeActive
            ? d.Type is SystemType.Ldt or SystemType.Tss32Available or SystemType.Tss32Busy
            : d.Type is SystemType.Tss16Available or SystemType.Ldt or SystemType.Tss16Busy
                or SystemType.Tss32Available or SystemType.Tss32Busy;
    }

    private static void Lar(SoftwareCpu cpu, in Instruction i)
    {
        RequireProtectedMode(cpu);
        var selector = SelectorOperand(cpu, in i, 1);
        var ok = TryProbe(cpu, selector, out var d) && LarType(cpu, d);
        if (ok)
        {
            // Access rights: type, S, DPL, P, AVL, L, D/B, G (limit bits 16-19 are undefined; we clear them).
            var rights = (uint)(d.Raw >> 32) & 0x00F0_FF00;
            cpu.WriteGpr(i.Op0Register, i.Op0Register.GetSize() == 2 ? rights & 0xFF00 : rights);
        }
        SetZf(cpu, ok);
    }

    private static void Lsl(SoftwareCpu cpu, in Instruction i)
    {
        RequireProtectedMode(cpu);
        var selector = SelectorOperand(cpu, in i, 1);
        var ok = TryProbe(cpu, selector, out var d) && LslType(cpu, d);
        if (ok) cpu.WriteGpr(i.Op0Register, d.Limit);
        SetZf(cpu, ok);
    }

    private static void Verr(SoftwareCpu cpu, in Instruction i)
    {
        RequireProtectedMode(cpu);
        var selector = SelectorOperand(cpu, in i, 0);
        SetZf(cpu, TryProbe(cpu, selector, out var d) && (d.IsData || d.IsReadableCode));
    }

    private static void Verw(SoftwareCpu cpu, in Instruction i)
    {
        RequireProtectedMode(cpu);
        var selector = SelectorOperand(cpu, in i, 0);
        SetZf(cpu, TryProbe(cpu, selector, out var d) && d.IsWritableData);
    }

    /// <summary>ARPL: raises the destination selector's RPL to the source's (SDM ARPL); a 16-bit operation.</summary>
    private static void Arpl(SoftwareCpu cpu, in Instruction i)
    {
        RequireProtectedMode(cpu);
        var dest = cpu.ReadForUpdate(in i, out var la);
        var src = cpu.ReadGpr(i.Op1Register);
        if ((dest & 3) < (src & 3))
        {
            var updated = (dest & ~3UL) | (src & 3);
            if (i.Op0Kind == OpKind.Register)
            {
                // Only the low 16 bits of a 32-bit register destination change.
                var full = i.Op0Register.GetFullRegister32();
                cpu.WriteGpr(full, (cpu.ReadGpr(full) & ~0xFFFFUL) | (updated & 0xFFFF));
            }
            else cpu.CompleteUpdate(in i, la, updated & 0xFFFF);
            SetZf(cpu, true);
        }
        else SetZf(cpu, false);
    }
}
