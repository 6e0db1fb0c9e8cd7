using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// MOV to and from CR0, CR2, CR3, CR4, CR8 and DR0-DR7 (SDM Vol. 2B, MOV—Move to/from Control Registers
/// and Debug Registers; Vol. 3A 2.5 and 17.2), with the mode switches a CR0 write makes (IA-32e activation,
/// 9.8.5) and the TLB invalidations each write implies (4.10.4.1).
/// </summary>
internal static class ControlRegisters
{
    /// <summary>CR0 bits that exist; other bits of CR0[31:0] are ignored on write and read as 0.</summary>
    private const ulong Cr0Defined = Cr0.PE | Cr0.MP | Cr0.EM | Cr0.TS | Cr0.ET | Cr0.NE | Cr0.WP | Cr0.AM | Cr0.NW | Cr0.CD | Cr0.PG;

    public const ulong Dr6Fixed1 = 0xFFFF_0FF0, Dr6Writable = 0xE00F; // B0-B3, BD, BS, BT
    public const ulong Dr7Fixed1 = 0x400, Dr7Writable = 0xFFFF_23FF;   // L0-G3, LE, GE, GD, R/W and LEN
    public const ulong Dr7Gd = 1 << 13, Dr6Bd = 1 << 13;

    public static void Mov(SoftwareCpu cpu, in Instruction i)
    {
        var toGpr = i.Op0Register.IsGPR();
        var special = toGpr ? i.Op1Register : i.Op0Register;
        var gpr = toGpr ? i.Op0Register : i.Op1Register;
        if (special.IsCR()) MovCr(cpu, special - Register.CR0, gpr, toGpr);
        else MovDr(cpu, special - Register.DR0, gpr, toGpr);
    }

    private static void MovCr(SoftwareCpu cpu, int n, Register gpr, bool toGpr)
    {
        if (n is not (0 or 2 or 3 or 4 or 8)) throw CpuFault.InvalidOpcode();
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        if (toGpr)
        {
            var v = n switch { 0 => cpu.Cr0, 2 => cpu.Cr2, 3 => cpu.Cr3, 4 => cpu.Cr4, _ => cpu.Cr8 };
            cpu.WriteGpr(gpr, v);
            return;
        }
        // Outside 64-bit mode the source is a 32-bit register, so the value is already 32 bits wide.
        var value = cpu.ReadGpr(gpr);
        switch (n)
        {
            case 0: WriteCr0(cpu, value); break;
            case 2: cpu.Cr2 = value; break;
            case 3: WriteCr3(cpu, value); break;
            case 4: WriteCr4(cpu, value); break;
            default: WriteCr8(cpu, value); break;
        }
        cpu.EndBlock = true;
    }

    /// <summary>MOV to CR0: validity checks, IA-32e activation/deactivation, PDPTE loads, TLB flushes.</summary>
    public static void WriteCr0(SoftwareCpu cpu, ulong value)
    {
        if ((value >> 32) != 0) throw CpuFault.General(0);
        // ET is hardwired to 1 on every processor since the 486.
        var v = (value & Cr0Defined) | Cr0.ET;
        if ((v & Cr0.PG) != 0 && (v & Cr0.PE) == 0) throw CpuFault.General(0);
        if ((v & Cr0.NW) != 0 && (v & Cr0.CD) == 0) throw CpuFault.General(0);
        var old = cpu.Cr0;
        var pagingOn = (old & Cr0.PG) == 0 && (v & Cr0.PG) != 0;
        var pagingOff = (old & Cr0.PG) != 0 && (v & Cr0.PG) == 0;
        var efer = cpu.EferValue;
        if (pagingOn && (efer & Efer.LME) != 0)
        {
            // Activating IA-32e mode needs PAE (SDM 9.8.5).
            if ((cpu.Cr4 & Cr4.PAE) == 0) throw CpuFault.General(0);
            efer |= Efer.LMA;
        }
        if (pagingOff && (efer & Efer.LMA) != 0)
        {
            // Leaving IA-32e mode is done from compatibility mode, never from 64-bit code.
            if (cpu.Is64) throw CpuFault.General(0);
            efer &= ~Efer.LMA;
        }
        // PAE paging in use after the write and PG, CD or NW changing: the PDPTEs are loaded (SDM 4.4.1).
        Span<ulong> pdptes = stackalloc ulong[4];
        var loadPdptes = (v & Cr0.PG) != 0 && (cpu.Cr4 & Cr4.PAE) != 0 && (efer & Efer.LMA) == 0 &&
                         ((old ^ v) & (Cr0.PG | Cr0.CD | Cr0.NW)) != 0;
        if (loadPdptes && !cpu.TryReadPdptes(cpu.Cr3, pdptes)) throw CpuFault.General(0);

        cpu.Cr0 = v;
        cpu.EferValue = efer;
        if (loadPdptes) cpu.SetPdptes(pdptes, cpu.Cr3);
        if (((old ^ v) & (Cr0.PG | Cr0.WP)) != 0) cpu.FlushTlb(includeGlobal: true);
        if (((old ^ v) & (Cr0.PE | Cr0.PG)) != 0) cpu.UpdateMode();
        cpu.EndBlock = true;
    }

    /// <summary>MOV to CR3: new paging-structure root; non-global translations are flushed.</summary>
    public static void WriteCr3(SoftwareCpu cpu, ulong value)
    {
        // Without PCIDs, bits 11:0 other than PWT/PCD are ignored; in IA-32e mode bits from MAXPHYADDR up are reserved.
        if (cpu.LongModeActive && (value & cpu.AbovePhysMask) != 0) throw CpuFault.General(0);
        if (!cpu.LongModeActive) value = (uint)value;
        if (cpu.PaeLegacyPaging)
        {
            Span<ulong> pdptes = stackalloc ulong[4];
            if (!cpu.TryReadPdptes(value, pdptes)) throw CpuFault.General(0);
            cpu.SetPdptes(pdptes, value);
        }
        cpu.Cr3 = value;
        cpu.FlushTlb(includeGlobal: false);
        cpu.EndBlock = true;
    }

    /// <summary>MOV to CR4: only the model's bits; PAE stays set in IA-32e mode; paging-mode bits flush all.</summary>
    public static void WriteCr4(SoftwareCpu cpu, ulong value)
    {
        if ((value & ~cpu.Model.Cr4Allowed) != 0) throw CpuFault.General(0);
        if (cpu.LongModeActive && (value & Cr4.PAE) == 0) throw CpuFault.General(0);
        var old = cpu.Cr4;
        var changed = old ^ value;
        const ulong pagingBits = Cr4.PGE | Cr4.PAE | Cr4.PSE;
        Span<ulong> pdptes = stackalloc ulong[4];
        var loadPdptes = cpu.PagingEnabled && (value & Cr4.PAE) != 0 && !cpu.LongModeActive && (changed & pagingBits) != 0;
        if (loadPdptes && !cpu.TryReadPdptes(cpu.Cr3, pdptes)) throw CpuFault.General(0);
        cpu.Cr4 = value;
        if (loadPdptes) cpu.SetPdptes(pdptes, cpu.Cr3);
        if ((changed & pagingBits) != 0) cpu.FlushTlb(includeGlobal: true);
        cpu.EndBlock = true;
    }

    /// <summary>MOV to CR8: the task-priority class (TPR[7:4]); bits 63:4 are reserved.</summary>
    public static void WriteCr8(SoftwareCpu cpu, ulong value)
    {
        if ((value >> 4) != 0) throw CpuFault.General(0);
        cpu.Cr8 = value;
        cpu.NoteInterruptChange(); // a lower TPR can unmask a pending vector
    }

    private static void MovDr(SoftwareCpu cpu, int n, Register gpr, bool toGpr)
    {
        if (n > 7) throw CpuFault.InvalidOpcode();
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        if (n is 4 or 5)
        {
            // DR4/DR5 alias DR6/DR7 unless debug extensions make them invalid.
            if ((cpu.Cr4 & Cr4.DE) != 0) throw CpuFault.InvalidOpcode();
            n += 2;
        }
        if ((cpu.Dr[7] & Dr7Gd) != 0)
        {
            // General detect: the access itself faults; the handler sees BD and GD cleared (SDM 17.2.4).
            cpu.Dr[6] |= Dr6Bd;
            cpu.Dr[7] &= ~Dr7Gd;
            throw CpuFault.Of(Vectors.DB);
        }
        if (toGpr)
        {
            cpu.WriteGpr(gpr, cpu.Dr[n]);
            return;
        }
        var value = cpu.ReadGpr(gpr);
        switch (n)
        {
            case 6:
                if ((value >> 32) != 0) throw CpuFault.General(0);
                cpu.Dr[6] = (value & Dr6Writable) | Dr6Fixed1;
                break;
            case 7:
                if ((value >> 32) != 0) throw CpuFault.General(0);
                cpu.Dr[7] = (value & Dr7Writable) | Dr7Fixed1;
                break;
            default:
                cpu.Dr[n] = value;
                break;
        }
    }
}
