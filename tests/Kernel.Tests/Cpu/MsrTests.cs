using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>RDMSR/WRMSR per MSR (SDM Vol. 4), RDTSC/RDTSCP/RDPMC.</summary>
public class MsrTests
{
    private static CpuHarness Long() => new(StartMode.Long64);

    /// <summary>Runs WRMSR (ecx, value) in the guest; returns the fault, if any.</summary>
    private static CpuFault? GuestWrmsr(CpuHarness h, uint msr, ulong value)
    {
        h.Load(a => { a.mov(ecx, msr); a.mov(eax, (uint)value); a.mov(edx, (uint)(value >> 32)); a.wrmsr(); });
        h.Step(3);
        try { h.Step(); return null; }
        catch (CpuFault f) { return f; }
    }

    private static ulong GuestRdmsr(CpuHarness h, uint msr)
    {
        h[Gpr.RAX] = h[Gpr.RDX] = 0xDEAD_BEEF_DEAD_BEEF;
        h.Load(a => { a.mov(ecx, msr); a.rdmsr(); });
        h.Step(2);
        // RDMSR writes EAX and EDX, clearing the upper halves.
        Assert.Equal(0UL, h[Gpr.RAX] >> 32);
        Assert.Equal(0UL, h[Gpr.RDX] >> 32);
        return (h[Gpr.RDX] << 32) | h[Gpr.RAX];
    }

    private static void AssertGp(CpuFault? f)
    {
        Assert.NotNull(f);
        Assert.Equal(Vectors.GP, f!.Vector);
        Assert.Equal(0u, f.ErrorCode);
    }

    [Theory]
    [InlineData(MsrIndex.Star, 0x0023_0010_0000_0000UL)]
    [InlineData(MsrIndex.Lstar, 0xFFFF_FFFF_8100_0000UL)]
    [InlineData(MsrIndex.Cstar, 0x0000_7FFF_FFFF_F000UL)]
    [InlineData(MsrIndex.Fmask, 0x47700UL)]
    [InlineData(MsrIndex.KernelGsBase, 0xFFFF_8880_0000_0000UL)]
    [InlineData(MsrIndex.SysenterCs, 0x10UL)]
    [InlineData(MsrIndex.SysenterEsp, 0xFFFF_FE00_0000_1000UL)]
    [InlineData(MsrIndex.SysenterEip, 0xFFFF_FFFF_8100_2000UL)]
    [InlineData(MsrIndex.TscAux, 0x1234UL)]
    [InlineData(MsrIndex.Pat, 0x0007_0106_0007_0406UL)]
    [InlineData(MsrIndex.MtrrDefType, 0xC06UL)]
    [InlineData(MsrIndex.MtrrPhysBase0, 0x8000_0000UL)]      // UC at 2 GiB
    [InlineData(MsrIndex.MtrrPhysBase0 + 1, 0xFF_8000_0800UL)] // 2 GiB mask, valid
    [InlineData(MsrIndex.MtrrFix64K00000, 0x0606_0606_0606_0606UL)]
    [InlineData(MsrIndex.MtrrFix4KF8000, 0x0505_0505_0505_0505UL)]
    public void WritableMsrsReadBackWhatWasWritten(uint msr, ulong value)
    {
        var h = Long();
        Assert.Null(GuestWrmsr(h, msr, value));
        Assert.Equal(value, GuestRdmsr(h, msr));
    }

    [Theory]
    [InlineData(MsrIndex.Lstar, 0x0000_8000_0000_0000UL)]        // non-canonical
    [InlineData(MsrIndex.Cstar, 0x0001_0000_0000_0000UL)]
    [InlineData(MsrIndex.FsBase, 0x8000_0000_0000_0000UL)]
    [InlineData(MsrIndex.GsBase, 0x0000_8000_0000_0000UL)]
    [InlineData(MsrIndex.KernelGsBase, 0x0000_8000_0000_0000UL)]
    [InlineData(MsrIndex.SysenterEip, 0x0000_8000_0000_0000UL)]
    [InlineData(MsrIndex.SysenterEsp, 0x0000_8000_0000_0000UL)]
    [InlineData(MsrIndex.Fmask, 1UL << 32)]
    [InlineData(MsrIndex.TscAux, 1UL << 32)]
    [InlineData(MsrIndex.Pat, 0x0007_0406_0007_0402UL)]        // type 2 is reserved
    [InlineData(MsrIndex.Pat, 0x0007_0406_0007_0408UL)]        // bits 7:3 of an entry are reserved
    [InlineData(MsrIndex.MtrrDefType, 0x107UL)]                // type 7 (UC-) is PAT-only; bit 8 reserved
    [InlineData(MsrIndex.MtrrDefType, 0x2UL)]
    [InlineData(MsrIndex.MtrrPhysBase0, 0x8000_0003UL)]        // type 3 reserved
    [InlineData(MsrIndex.MtrrPhysBase0, 0x100_0000_0006UL)]    // above MAXPHYADDR
    [InlineData(MsrIndex.MtrrPhysBase0 + 1, 0xFF_8000_0001UL)] // mask bits 10:0 reserved
    [InlineData(MsrIndex.MtrrFix16K80000, 0x0606_0606_0606_0602UL)]
    [InlineData(MsrIndex.MtrrCap, 0UL)]                        // read-only
    [InlineData(MsrIndex.FeatureControl, 5UL)]                 // locked
    [InlineData(MsrIndex.Efer, 1UL << 9)]                      // reserved EFER bit
    [InlineData(MsrIndex.ApicBase, 0xFEE0_0800UL | (1 << 10))] // x2APIC not implemented
    [InlineData(MsrIndex.ApicBase, 0xFEE0_0801UL)]             // reserved low bits
    [InlineData(MsrIndex.ApicBase, 0x100_FEE0_0800UL)]         // above MAXPHYADDR
    [InlineData(MsrIndex.DebugCtl, 1UL)]                       // no LBR
    [InlineData(0x179u, 0UL)]                                  // MCG_CAP: no machine check architecture
    [InlineData(0x12345u, 0UL)]
    public void InvalidWritesRaiseGp(uint msr, ulong value)
    {
        var h = Long();
        var before = msr is MsrIndex.MtrrCap or 0x179u or 0x12345u ? 0 : h.Cpu.ReadMsr(msr);
        AssertGp(GuestWrmsr(h, msr, value));
        if (msr is not (MsrIndex.MtrrCap or 0x179u or 0x12345u or MsrIndex.Tsc)) Assert.Equal(before, h.Cpu.ReadMsr(msr));
    }

    [Theory]
    [InlineData(0x179u)]   // MCG_CAP
    [InlineData(0x1A2u)]   // TEMPERATURE_TARGET
    [InlineData(0xCEu)]    // PLATFORM_INFO: not advertised
    [InlineData(0x48u)]    // SPEC_CTRL: not advertised
    [InlineData(0xC001_0015u)]
    public void UnknownMsrReadsRaiseGp(uint msr)
    {
        var h = Long();
        h.Load(a => { a.mov(ecx, msr); a.rdmsr(); });
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void ReadOnlyAndFixedValues()
    {
        var h = Long();
        Assert.Equal(0x508UL, GuestRdmsr(h, MsrIndex.MtrrCap));       // 8 variable MTRRs, fixed, WC
        Assert.Equal(1UL, GuestRdmsr(h, MsrIndex.FeatureControl));   // locked, nothing enabled
        Assert.Equal(0xFEE0_0900UL, GuestRdmsr(h, MsrIndex.ApicBase)); // BSP, enabled, default base
        Assert.Equal(0x0007_0406_0007_0406UL, GuestRdmsr(h, MsrIndex.Pat));
        Assert.Equal(1UL << 32, GuestRdmsr(h, MsrIndex.BiosSignId));
        Assert.Null(GuestWrmsr(h, MsrIndex.BiosSignId, 0));
    }

    [Fact]
    public void ApicBaseKeepsBspFlagAndDrivesCpuidApicBit()
    {
        var h = Long();
        Assert.Null(GuestWrmsr(h, MsrIndex.ApicBase, 0xFEC0_0000UL)); // disabled, moved, BSP written as 0
        Assert.Equal(0xFEC0_0100UL, GuestRdmsr(h, MsrIndex.ApicBase));
        var (_, _, _, edx) = Kernel.Cpu.Instructions.CpuidInstruction.Query(h.Cpu, 1, 0);
        Assert.Equal(0u, edx & CpuidBits.Apic);
    }

    [Fact]
    public void EferKeepsLmaReadOnlyAndRefusesLmeChangesWhilePaging()
    {
        var h = Long();
        var efer = GuestRdmsr(h, MsrIndex.Efer);
        Assert.Equal(Efer.SCE | Efer.LME | Efer.LMA | Efer.NXE, efer);
        // Clearing SCE and NXE works; writing LMA as 0 is ignored.
        Assert.Null(GuestWrmsr(h, MsrIndex.Efer, Efer.LME));
        Assert.Equal(Efer.LME | Efer.LMA, GuestRdmsr(h, MsrIndex.Efer));
        // LME cannot change with paging on.
        AssertGp(GuestWrmsr(h, MsrIndex.Efer, 0));
    }

    [Fact]
    public void FsAndGsBaseMsrsMoveTheSegmentsUsedByAccesses()
    {
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            a.mov(ecx, MsrIndex.FsBase);
            a.mov(eax, 0x30000u);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, MsrIndex.GsBase);
            a.mov(eax, 0x40000u);
            a.wrmsr();
            a.mov(rbx, __qword_ptr.fs[0x8]);
            a.mov(rsi, __qword_ptr.gs[0x8]);
            a.mov(ecx, MsrIndex.KernelGsBase);
            a.mov(eax, 0x50000u);
            a.wrmsr();
            a.swapgs();
            a.mov(rdi, __qword_ptr.gs[0x8]);
            a.hlt();
        }, setup: (cpu, mem) =>
        {
            mem.WriteUInt64(0x30008, 0xF5F5);
            mem.WriteUInt64(0x40008, 0x6565);
            mem.WriteUInt64(0x50008, 0x4B4B);
        });
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal(0xF5F5UL, r.Reg(Gpr.RBX));
        Assert.Equal(0x6565UL, r.Reg(Gpr.RSI));
        Assert.Equal(0x4B4BUL, r.Reg(Gpr.RDI));
        Assert.Equal(0x40000UL, r.Cpu.KernelGsBase);
        Assert.Equal(0x50000UL, r.Cpu.Segs[Seg.GS].Base);
    }

    [Fact]
    public void SwapgsIsUndefinedOutside64BitModeAndPrivileged()
    {
        var h = new CpuHarness(StartMode.Protected32);
        h.LoadBytes(0x0F, 0x01, 0xF8);
        h.ExpectFault(Vectors.UD);
        var l = Long();
        l.EnterRing3();
        l.Load(a => a.swapgs());
        l.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void MsrAccessAtCpl3RaisesGp()
    {
        var h = Long();
        h.EnterRing3();
        h.Load(a => { a.mov(ecx, MsrIndex.Efer); a.rdmsr(); });
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void MsrsWorkInRealMode()
    {
        var h = new CpuHarness(StartMode.Real);
        h.Load(a => { a.mov(ecx, MsrIndex.TscAux); a.mov(eax, 0x77u); a.xor(edx, edx); a.wrmsr(); a.xor(eax, eax); a.rdmsr(); });
        h.Step(6);
        Assert.Equal(0x77UL, h[Gpr.RAX]);
    }

    [Fact]
    public void MiscEnableLimitCpuidMaxvalCapsLeafZero()
    {
        var h = Long();
        var misc = GuestRdmsr(h, MsrIndex.MiscEnable);
        Assert.Equal(MiscEnableBits.FastStrings | MiscEnableBits.BtsUnavailable | MiscEnableBits.PebsUnavailable, misc);
        Assert.Null(GuestWrmsr(h, MsrIndex.MiscEnable, misc | MiscEnableBits.LimitCpuidMaxval));
        Assert.Equal(2u, Kernel.Cpu.Instructions.CpuidInstruction.Query(h.Cpu, 0, 0).Eax);
        // Bits that report missing features stay set whatever is written.
        Assert.Null(GuestWrmsr(h, MsrIndex.MiscEnable, 0));
        Assert.Equal(MiscEnableBits.BtsUnavailable | MiscEnableBits.PebsUnavailable, GuestRdmsr(h, MsrIndex.MiscEnable));
    }

    /// <summary>
    /// In the deterministic schedule the TSC is the retired-instruction count plus the offset WRMSR set:
    /// after writing 1000, the RDTSC two instructions later reads exactly 1002.
    /// </summary>
    [Fact]
    public void TscWriteSetsTheCounterExactlyInDeterministicMode()
    {
        var h = Long();
        h.Cpu.Deterministic = true;
        h.Load(a =>
        {
            a.mov(ecx, MsrIndex.Tsc);
            a.mov(eax, 1000u);
            a.xor(edx, edx);
            a.wrmsr();   // retires as instruction n; TSC = 1000 at that point
            a.nop();
            a.rdtsc();   // two instructions later
            a.mov(ecx, MsrIndex.TscAux);
            a.mov(eax, 7u);
            a.wrmsr();
            a.rdtscp();
        });
        h.Step(6);
        Assert.Equal(1002UL, h[Gpr.RAX]);
        Assert.Equal(0UL, h[Gpr.RDX]);
        h.Step(4);
        Assert.Equal(1006UL, h[Gpr.RAX]);
        Assert.Equal(7UL, h[Gpr.RCX]);
    }

    /// <summary>
    /// IA32_TSC_ADJUST (SDM Vol. 3B, 18.17.3): writing it adds the change to the TSC; writing the TSC adds
    /// the TSC's change to it. Deterministic mode holds the raw clock still between the accesses.
    /// </summary>
    [Fact]
    public void TscAdjustAndTscMoveTogether()
    {
        var h = Long();
        h.Cpu.Deterministic = true;
        Assert.Equal(0UL, h.Cpu.ReadMsr(MsrIndex.TscAdjust));
        var t0 = h.Cpu.ReadMsr(MsrIndex.Tsc);
        h.Cpu.WriteMsr(MsrIndex.TscAdjust, 500);
        Assert.Equal(t0 + 500, h.Cpu.ReadMsr(MsrIndex.Tsc));
        h.Cpu.WriteMsr(MsrIndex.TscAdjust, 200);
        Assert.Equal(t0 + 200, h.Cpu.ReadMsr(MsrIndex.Tsc));
        h.Cpu.WriteMsr(MsrIndex.Tsc, t0 + 10_000);
        Assert.Equal(10_000UL, h.Cpu.ReadMsr(MsrIndex.TscAdjust));
        Assert.Equal(t0 + 10_000, h.Cpu.ReadMsr(MsrIndex.Tsc));
        // CPUID.(EAX=7,ECX=0):EBX[1] says the MSR exists.
        h.Load(a => { a.mov(eax, 7u); a.xor(ecx, ecx); a.cpuid(); });
        h.Step(3);
        Assert.NotEqual(0UL, h[Gpr.RBX] & 2);
    }

    [Fact]
    public void HostTimeTscAdvancesAtTheModelRate()
    {
        var h = Long();
        h.Cpu.ReadTsc(); // warm up, so JIT time does not fall between the two reads below
        var outer = System.Diagnostics.Stopwatch.StartNew();
        var t0 = h.Cpu.ReadTsc();
        Thread.Sleep(20);
        var t1 = h.Cpu.ReadTsc();
        var outerNs = outer.Elapsed.TotalMilliseconds * 1e6;
        // TscHz is 1 GHz: one tick per nanosecond. The interval is at least the sleep and at most the
        // host time measured around it.
        Assert.InRange((double)(t1 - t0), 20e6 * 0.99, outerNs * 1.01 + 1e5);
    }

    [Fact]
    public void TimeStampDisableMakesRdtscPrivileged()
    {
        var h = Long();
        h.Cpu.Cr4 |= Cr4.TSD;
        h.Load(a => a.rdtsc());
        h.Step(); // CPL 0 may still read it
        h.EnterRing3();
        h.Load(a => a.rdtsc());
        h.ExpectFault(Vectors.GP, 0);
        h.Load(a => a.rdtscp());
        h.ExpectFault(Vectors.GP, 0);
        h.Cpu.Cr4 &= ~Cr4.TSD;
        h.Load(a => a.rdtsc());
        h.Step();
    }

    [Fact]
    public void RdtscpIsUndefinedWhenTheModelLacksIt()
    {
        var model = CpuModel.Default with { Ext1Edx = CpuModel.Default.Ext1Edx & ~CpuidBits.Rdtscp };
        var h = new CpuHarness(StartMode.Long64, model);
        h.Load(a => a.rdtscp());
        h.ExpectFault(Vectors.UD);
    }

    [Fact]
    public void RdpmcHasNoCountersToRead()
    {
        var h = Long();
        h.Cpu.Cr4 |= Cr4.PCE;
        h.Load(a => { a.xor(ecx, ecx); a.rdpmc(); });
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
    }
}
