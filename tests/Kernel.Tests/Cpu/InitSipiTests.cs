using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// INIT and STARTUP on the CPU (SDM Vol. 3A, Table 10-1, INIT column; 10.4.4 "MP Initialization Example"):
/// INIT resets the registers but leaves the x87/SSE state, the MSRs and CR0.CD/NW; SIPI starts real mode at VV00:0000.
/// </summary>
public class InitSipiTests
{
    private readonly GuestMemory _memory = new(4 << 20);

    private SoftwareCpu LongModeCpu(int id = 1)
    {
        var cpu = new SoftwareCpu(id, _memory, new TestPlatform());
        CpuSetup.EnterLongMode(cpu, 0x200000, 0x9F000);
        for (var i = 0; i < 16; i++) cpu.Gprs[i] = 0x1111UL * (ulong)(i + 1);
        cpu.Cr0 |= Cr0.CD;
        cpu.Cr2 = 0x1234;
        cpu.Cr8 = 5;
        cpu.Fcw = 0x027F;
        cpu.Mxcsr = 0x1F00;
        cpu.Xmm[3] = 0xDEAD_BEEF;
        cpu.Lstar = 0xFFFF_8000_0010_0000;
        cpu.Pat = 0x0606_0606_0606_0606;
        cpu.Dr[0] = 0x5000;
        return cpu;
    }

    [Fact]
    public void InitResetsRegistersButKeepsFpuSseMsrsAndCacheControl()
    {
        var cpu = LongModeCpu();
        var apicBase = cpu.ApicBase;
        cpu.Init();

        Assert.True(cpu.WaitingForSipi);
        Assert.Equal(0xFFF0UL, cpu.Rip);
        Assert.Equal(RFlags.Fixed1, cpu.GetFlags());
        Assert.Equal(CpuModel.Default.ResetEdx, cpu.Gprs[Gpr.RDX]);
        Assert.All(Enumerable.Range(0, 16).Where(i => i != Gpr.RDX), i => Assert.Equal(0UL, cpu.Gprs[i]));
        Assert.Equal((ushort)0xF000, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0xFFFF_0000UL, cpu.Segs[Seg.CS].Base);
        Assert.Equal(0UL, cpu.Segs[Seg.SS].Base);
        Assert.Equal(0xFFFFu, cpu.Segs[Seg.DS].Limit);
        Assert.Equal(Cr0.CD | Cr0.ET, cpu.Cr0);            // CD (and NW) unchanged, ET set, the rest clear: real mode
        Assert.Equal((0UL, 0UL, 0UL, 0UL), (cpu.Cr2, cpu.Cr3, cpu.Cr4, cpu.Cr8));
        Assert.Equal(0UL, cpu.EferValue);                  // LME/LMA gone with paging
        Assert.Equal(16, cpu.Bitness);
        Assert.Equal((0UL, 0xFFFFu), (cpu.Gdtr.Base, cpu.Gdtr.Limit));
        Assert.Equal((0UL, 0xFFFFu), (cpu.Idtr.Base, cpu.Idtr.Limit));
        Assert.Equal((0UL, 0xFFFF0FF0UL, 0x400UL), (cpu.Dr[0], cpu.Dr[6], cpu.Dr[7]));
        // Unchanged by INIT.
        Assert.Equal((ushort)0x027F, cpu.Fcw);
        Assert.Equal(0x1F00u, cpu.Mxcsr);
        Assert.Equal(0xDEAD_BEEFUL, cpu.Xmm[3]);
        Assert.Equal(0xFFFF_8000_0010_0000UL, cpu.Lstar);
        Assert.Equal(0x0606_0606_0606_0606UL, cpu.Pat);
        Assert.Equal(apicBase, cpu.ApicBase);
    }

    [Fact]
    public void StartupIpiRunsRealModeCodeAtTheVectorsPageOnce()
    {
        var cpu = LongModeCpu();
        cpu.Init();
        // At 9A000h: MOV AX,CS; MOV [0x10],AX (DS = 0 after INIT) ... real mode with CS base 9A000h.
        _memory.Write(0x9A000, GuestImages16(a =>
        {
            a.mov(ax, cs);
            a.mov(__word_ptr[0x500], ax);
            a.hlt();
        }));
        Assert.True(cpu.StartUp(0x9A));
        Assert.False(cpu.WaitingForSipi);
        Assert.Equal((ushort)0x9A00, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0x9A000UL, cpu.Segs[Seg.CS].Base);
        Assert.Equal(0UL, cpu.Rip);
        cpu.StepRaw();
        cpu.StepRaw();
        Assert.Equal(0x9A00, _memory.ReadUInt16(0x500));
        // A second SIPI to a running CPU is ignored.
        var rip = cpu.Rip;
        Assert.False(cpu.StartUp(0x10));
        Assert.Equal((ushort)0x9A00, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(rip, cpu.Rip);
    }

    [Fact]
    public void AnApWaitsInItsPowerOnStateAndTheBspFlagSurvivesInit()
    {
        var ap = new SoftwareCpu(2, _memory, new TestPlatform());
        Assert.False(ap.WaitingForSipi);
        ap.EnterWaitForSipi();
        Assert.True(ap.WaitingForSipi);
        Assert.Equal(0UL, ap.ApicBase & ApicBaseBits.Bsp);
        var bsp = new SoftwareCpu(0, _memory, new TestPlatform());
        bsp.Init();
        Assert.NotEqual(0UL, bsp.ApicBase & ApicBaseBits.Bsp);
    }

    private static byte[] GuestImages16(Action<Assembler> program)
    {
        var a = new Assembler(16);
        program(a);
        using var s = new MemoryStream();
        a.Assemble(new StreamCodeWriter(s), 0);
        return s.ToArray();
    }
}
