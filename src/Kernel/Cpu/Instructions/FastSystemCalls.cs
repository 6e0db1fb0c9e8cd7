using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// SYSCALL/SYSRET (IA32_STAR/LSTAR/FMASK), SYSENTER/SYSEXIT (IA32_SYSENTER_CS/ESP/EIP) and SWAPGS, per the
/// Intel SDM Vol. 2B. These load CS and SS with fixed flat descriptors and never read the GDT; the OS keeps
/// its descriptors in the layout the selectors assume. As on Intel processors, SYSCALL and SYSRET exist
/// only in 64-bit mode (CSTAR is storage only); SYSRET may return to compatibility mode.
/// </summary>
internal static unsafe class FastSystemCalls
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Syscall, &Syscall);
        t.Set(Mnemonic.Sysret, &Sysret);
        t.Set(Mnemonic.Sysretq, &Sysret);
        t.Set(Mnemonic.Sysenter, &Sysenter);
        t.Set(Mnemonic.Sysexit, &Sysexit);
        t.Set(Mnemonic.Sysexitq, &Sysexit);
        t.Set(Mnemonic.Swapgs, &Swapgs);
    }

    private static bool SyscallEnabled(SoftwareCpu cpu) =>
        cpu.Is64 && (cpu.EferValue & Efer.SCE) != 0 && cpu.Model.HasSyscall;

    private static void Syscall(SoftwareCpu cpu, in Instruction i)
    {
        if (!SyscallEnabled(cpu)) throw CpuFault.InvalidOpcode();
        // RCX gets the return address, R11 RFLAGS with RF clear; then FMASK clears bits, and RF.
        var flags = cpu.GetFlags() & ~RFlags.RF;
        cpu.Gprs[Gpr.RCX] = cpu.Rip;
        cpu.Gprs[Gpr.R11] = flags;
        cpu.SetFlags(flags & ~(cpu.Fmask & 0xFFFF_FFFFUL));
        var sel = (ushort)(cpu.Star >> 32);
        LoadFlatCode(cpu, (ushort)(sel & 0xFFFC), dpl: 0, longMode: true);
        LoadFlatStack(cpu, (ushort)(sel + 8), dpl: 0);
        cpu.Rip = cpu.Lstar;
        cpu.UpdateMode();
    }

    private static void Sysret(SoftwareCpu cpu, in Instruction i)
    {
        if (!SyscallEnabled(cpu)) throw CpuFault.InvalidOpcode();
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        var to64 = i.Code == Code.Sysretq;
        var rcx = cpu.Gprs[Gpr.RCX];
        // A non-canonical return address faults here, at CPL 0 (Intel behaviour).
        if (to64 && !SoftwareCpu.IsCanonical(rcx)) throw CpuFault.General(0);
        var sel = (ushort)(cpu.Star >> 48);
        // RF and VM are cleared, bit 1 set; the rest comes from R11.
        cpu.SetFlags((cpu.Gprs[Gpr.R11] & 0x3C_7FD7UL) | RFlags.Fixed1);
        LoadFlatCode(cpu, (ushort)((to64 ? sel + 16 : sel) | 3), dpl: 3, longMode: to64);
        LoadFlatStack(cpu, (ushort)((sel + 8) | 3), dpl: 3);
        cpu.Rip = to64 ? rcx : (uint)rcx;
        cpu.UpdateMode();
    }

    private static void Sysenter(SoftwareCpu cpu, in Instruction i)
    {
        if (!cpu.ProtectedMode || (cpu.SysenterCs & 0xFFFC) == 0) throw CpuFault.General(0);
        cpu.SetFlags(cpu.GetFlags() & ~(RFlags.VM | RFlags.IF | RFlags.RF));
        var ia32e = cpu.LongModeActive;
        var sel = (ushort)(cpu.SysenterCs & 0xFFFC);
        LoadFlatCode(cpu, sel, dpl: 0, longMode: ia32e);
        LoadFlatStack(cpu, (ushort)(sel + 8), dpl: 0);
        cpu.Gprs[Gpr.RSP] = ia32e ? cpu.SysenterEsp : (uint)cpu.SysenterEsp;
        cpu.Rip = ia32e ? cpu.SysenterEip : (uint)cpu.SysenterEip;
        cpu.UpdateMode();
    }

    private static void Sysexit(SoftwareCpu cpu, in Instruction i)
    {
        if (!cpu.ProtectedMode || cpu.Cpl != 0 || (cpu.SysenterCs & 0xFFFC) == 0) throw CpuFault.General(0);
        var to64 = i.Code == Code.Sysexitq;
        ulong rsp = cpu.Gprs[Gpr.RCX], rip = cpu.Gprs[Gpr.RDX];
        if (to64 && (!SoftwareCpu.IsCanonical(rsp) || !SoftwareCpu.IsCanonical(rip))) throw CpuFault.General(0);
        var cs = (ushort)(((ushort)cpu.SysenterCs + (to64 ? 32 : 16)) | 3);
        LoadFlatCode(cpu, cs, dpl: 3, longMode: to64);
        LoadFlatStack(cpu, (ushort)(cs + 8), dpl: 3);
        cpu.Gprs[Gpr.RSP] = to64 ? rsp : (uint)rsp;
        cpu.Rip = to64 ? rip : (uint)rip;
        cpu.UpdateMode();
    }

    /// <summary>SWAPGS: exchanges GS.base with IA32_KERNEL_GS_BASE; 64-bit mode, CPL 0.</summary>
    private static void Swapgs(SoftwareCpu cpu, in Instruction i)
    {
        if (!cpu.Is64) throw CpuFault.InvalidOpcode();
        if (cpu.Cpl != 0) throw CpuFault.General(0);
        (cpu.Segs[Seg.GS].Base, cpu.KernelGsBase) = (cpu.KernelGsBase, cpu.Segs[Seg.GS].Base);
    }

    /// <summary>CS := flat execute/read code (type 11), base 0, 4 GiB limit, the given DPL, 64-bit or 32-bit.</summary>
    private static void LoadFlatCode(SoftwareCpu cpu, ushort selector, int dpl, bool longMode)
    {
        cpu.Segs[Seg.CS] = new SegmentRegister
        {
            Selector = selector, Base = 0, Limit = 0xFFFF_FFFF,
            Attributes = 0xB | SegmentRegister.AttrS | ((uint)dpl << 5) | SegmentRegister.AttrP | SegmentRegister.AttrG |
                         (longMode ? SegmentRegister.AttrL : SegmentRegister.AttrDb),
        };
    }

    /// <summary>SS := flat read/write data (type 3), base 0, 4 GiB limit, B = 1, the given DPL.</summary>
    private static void LoadFlatStack(SoftwareCpu cpu, ushort selector, int dpl)
    {
        cpu.Segs[Seg.SS] = new SegmentRegister
        {
            Selector = selector, Base = 0, Limit = 0xFFFF_FFFF,
            Attributes = 0x3 | SegmentRegister.AttrS | ((uint)dpl << 5) | SegmentRegister.AttrP | SegmentRegister.AttrG |
                         SegmentRegister.AttrDb,
        };
    }
}
