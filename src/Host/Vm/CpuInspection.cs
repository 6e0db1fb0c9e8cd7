using System.Text.Json.Nodes;
using Actorvisor.Actors.Cpu.Lapic;
using Actorvisor.Kernel.Cpu;
using static Actorvisor.Actors.Cpu.Lapic.LapicRegisters;
using static Actorvisor.Host.Vm.VmControl;

namespace Actorvisor.Host.Vm;

/// <summary>
/// What a control client sees of a vCPU and its LAPIC, and the register changes it may make. Every method
/// here runs on the vCPU's own thread between two runs (<see cref="Actorvisor.Actors.Cpu.VcpuProtocol.OnThread"/>),
/// so it sees the CPU at an instruction boundary and races with nothing.
/// </summary>
public static class CpuInspection
{
    private static readonly string[] Gprs =
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

    private static readonly (string Name, int Index)[] Segments =
        [("es", Seg.ES), ("cs", Seg.CS), ("ss", Seg.SS), ("ds", Seg.DS), ("fs", Seg.FS), ("gs", Seg.GS)];

    /// <summary>The MSRs we track, by bhyvectl-like name; set-reg writes them through WRMSR's own checks.</summary>
    public static readonly (string Name, uint Index)[] TrackedMsrs =
    [
        ("apic_base", MsrIndex.ApicBase), ("tsc", MsrIndex.Tsc), ("tsc_adjust", MsrIndex.TscAdjust), ("pat", MsrIndex.Pat),
        ("misc_enable", MsrIndex.MiscEnable), ("sysenter_cs", MsrIndex.SysenterCs), ("sysenter_esp", MsrIndex.SysenterEsp),
        ("sysenter_eip", MsrIndex.SysenterEip), ("star", MsrIndex.Star), ("lstar", MsrIndex.Lstar), ("cstar", MsrIndex.Cstar),
        ("fmask", MsrIndex.Fmask), ("fs_base", MsrIndex.FsBase), ("gs_base", MsrIndex.GsBase),
        ("kernel_gs_base", MsrIndex.KernelGsBase), ("tsc_aux", MsrIndex.TscAux),
    ];

    /// <summary>Every name set-reg takes: the GPRs, rip, rflags, control registers and EFER, then the tracked MSRs.</summary>
    public static IReadOnlyList<string> SettableNames { get; } = [.. SoftwareCpu.RegisterNames, .. TrackedMsrs.Select(m => m.Name)];

    public static JsonObject Registers(SoftwareCpu cpu)
    {
        var o = new JsonObject();
        for (var i = 0; i < Gprs.Length; i++) o[Gprs[i]] = Hex(cpu.Gprs[i]);
        o["rip"] = Hex(cpu.Rip);
        o["rflags"] = Hex(cpu.GetFlags());
        foreach (var (name, index) in Segments) o[name] = Segment(cpu.Segs[index]);
        o["ldtr"] = Segment(cpu.Ldtr);
        o["tr"] = Segment(cpu.Tr);
        o["gdtr"] = new JsonObject { ["base"] = Hex(cpu.Gdtr.Base), ["limit"] = Hex(cpu.Gdtr.Limit) };
        o["idtr"] = new JsonObject { ["base"] = Hex(cpu.Idtr.Base), ["limit"] = Hex(cpu.Idtr.Limit) };
        o["cr0"] = Hex(cpu.Cr0);
        o["cr2"] = Hex(cpu.Cr2);
        o["cr3"] = Hex(cpu.Cr3);
        o["cr4"] = Hex(cpu.Cr4);
        o["cr8"] = Hex(cpu.Cr8);
        o["efer"] = Hex(cpu.EferValue);
        var msrs = new JsonObject();
        foreach (var (name, index) in TrackedMsrs) msrs[name] = Hex(cpu.ReadMsr(index));
        o["msrs"] = msrs;
        o["mode"] = cpu.Bitness switch { 64 => "long", 32 => "protected 32-bit", _ => cpu.ProtectedMode ? "protected 16-bit" : "real" };
        o["cpl"] = cpu.Cpl;
        o["halted"] = cpu.Halted;
        o["wait_for_sipi"] = cpu.WaitingForSipi;
        o["instructions"] = cpu.InstructionCount;
        return o;
    }

    private static JsonObject Segment(SegmentRegister s) => new()
    {
        ["selector"] = Hex(s.Selector), ["base"] = Hex(s.Base), ["limit"] = Hex(s.Limit), ["access"] = Hex(s.Attributes),
    };

    /// <summary>Sets a register or tracked MSR by name; null when done, else why not (an unknown name, a value WRMSR refuses).</summary>
    public static string? SetRegister(SoftwareCpu cpu, string name, ulong value)
    {
        name = name.ToLowerInvariant();
        if (cpu.TrySetRegister(name, value)) return null;
        foreach (var (msr, index) in TrackedMsrs)
        {
            if (msr != name) continue;
            try
            {
                cpu.WriteMsr(index, value);
                return null;
            }
            catch (CpuFault)
            {
                return $"the CPU refuses {Hex(value)} for {name} (WRMSR would raise #GP)";
            }
        }
        return $"unknown register '{name}'; known: {string.Join(", ", SettableNames)}";
    }

    /// <summary>The LAPIC's registers as the guest would read them, with IRR/ISR/TMR as vector lists.</summary>
    public static JsonObject Lapic(Actorvisor.Actors.Cpu.Lapic.Lapic lapic)
    {
        uint R(uint reg) => lapic.Read(reg, 4);
        var o = new JsonObject
        {
            ["id"] = Hex(R(Id) >> IdShift),
            ["version"] = Hex(R(LapicRegisters.Version)),
            ["enabled"] = lapic.SoftwareEnabled,
            ["tpr"] = Hex(R(LapicRegisters.Tpr)),
            ["ppr"] = Hex(R(LapicRegisters.Ppr)),
            ["ldr"] = Hex(R(Ldr)),
            ["dfr"] = Hex(R(Dfr)),
            ["svr"] = Hex(R(Svr)),
            ["esr"] = Hex(R(Esr)),
            ["icr"] = Hex(((ulong)R(IcrHigh) << 32) | R(IcrLow)),
            ["lvt_timer"] = Hex(R(LvtTimer)),
            ["lvt_thermal"] = Hex(R(LvtThermal)),
            ["lvt_pmc"] = Hex(R(LvtPmc)),
            ["lvt_lint0"] = Hex(R(LvtLint0)),
            ["lvt_lint1"] = Hex(R(LvtLint1)),
            ["lvt_error"] = Hex(R(LvtError)),
            ["lvt_cmci"] = Hex(R(LvtCmci)),
            ["timer_initial_count"] = Hex(R(TimerInitialCount)),
            ["timer_current_count"] = Hex(R(TimerCurrentCount)),
            ["timer_divide_config"] = Hex(R(TimerDivide)),
            ["irr"] = Vectors(v => lapic.IrrBit(v)),
            ["isr"] = Vectors(v => lapic.IsrBit(v)),
            ["tmr"] = Vectors(v => lapic.TmrBit(v)),
        };
        return o;
    }

    private static JsonArray Vectors(Func<int, bool> bit)
    {
        var a = new JsonArray();
        for (var v = 0; v < 256; v++)
            if (bit(v)) a.Add(Hex((ulong)v));
        return a;
    }
}
