using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>PUSHF/POPF privilege rules (SDM Vol. 2B, POPF table), LAHF/SAHF, CLC/STC/CMC/CLD/STD.</summary>
public class FlagInstructionTests
{
    private const ulong AllWritable = RFlags.Writable;

    [Fact]
    public void PushfImageHasVmAndRfClearInEverySize()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Cpu.SetFlags(RFlags.RF | RFlags.CF | RFlags.IF | RFlags.AC | RFlags.ID);
        h.Load(a => { a.pushfq(); a.db(0x66, 0x9C); }); // pushfq; pushfw
        h.Step(2);
        var sp = h[Gpr.RSP];
        Assert.Equal(CpuHarness.StackTop - 10, sp);
        Assert.Equal(RFlags.CF | RFlags.IF | RFlags.AC | RFlags.ID | RFlags.Fixed1, h.Memory.ReadUInt64(sp + 2));
        Assert.Equal((ushort)(RFlags.CF | RFlags.IF | RFlags.Fixed1), h.Memory.ReadUInt16(sp));
    }

    /// <summary>Pops an all-ones image with POPF of the given size; returns the flags before and after.</summary>
    private static (ulong Before, ulong After) PopAllOnes(CpuHarness h, int size)
    {
        var before = h.Cpu.GetFlags();
        h.Cpu.Gprs[Gpr.RSP] -= (ulong)size;
        var at = h.Cpu.Segs[Seg.SS].Base + (h.Cpu.Gprs[Gpr.RSP] & 0xFFFF_FFFF);
        h.Memory.Write(at, BitConverter.GetBytes(ulong.MaxValue).AsSpan(0, size));
        var bytes = (h.Cpu.Bitness, size) switch
        {
            (64, 8) or (32, 4) or (16, 2) => new byte[] { 0x9D },
            _ => new byte[] { 0x66, 0x9D },
        };
        h.LoadBytes(bytes);
        h.Step();
        return (before, h.Cpu.GetFlags());
    }

    [Fact]
    public void PopfAtCpl0ChangesIoplAndIfButNeverVmVifVipOrRf()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Cpu.SetFlags(RFlags.RF | RFlags.VIP);
        var (_, after) = PopAllOnes(h, 8);
        var expected = (AllWritable & ~(RFlags.VM | RFlags.VIF | RFlags.VIP | RFlags.RF)) | RFlags.VIP | RFlags.Fixed1;
        Assert.Equal(expected, after);
    }

    [Fact]
    public void PopfAtCpl3WithIoplBelowCplKeepsIfAndIopl()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.EnterRing3(iopl: 0);
        var (before, after) = PopAllOnes(h, 8);
        Assert.Equal(before & (RFlags.IF | RFlags.IOPL), after & (RFlags.IF | RFlags.IOPL));
        Assert.Equal(0UL, after & RFlags.IF);
        var changeable = RFlags.Arith | RFlags.TF | RFlags.DF | RFlags.NT | RFlags.AC | RFlags.ID;
        Assert.Equal(changeable, after & changeable);
    }

    [Fact]
    public void PopfAtCpl3WithIopl3ChangesIfButNotIopl()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.EnterRing3(iopl: 3);
        h.Cpu.SetFlags(h.Cpu.GetFlags() & ~RFlags.IF);
        // Clearing the image's IOPL bits must not lower IOPL either.
        h.Cpu.Gprs[Gpr.RSP] -= 8;
        h.Memory.WriteUInt64(h.Cpu.Gprs[Gpr.RSP], RFlags.IF | RFlags.CF);
        h.LoadBytes(0x9D);
        h.Step();
        Assert.True(h.Cpu.IF);
        Assert.Equal(3, h.Cpu.Iopl);
        Assert.True(h.Cpu.EndBlock); // IF changed: the run loop must look for interrupts
    }

    [Fact]
    public void SixteenBitPopfInRealModeChangesOnlyTheLowWord()
    {
        var h = new CpuHarness(StartMode.Real);
        h.Cpu.SetFlags(RFlags.AC | RFlags.ID);
        var (_, after) = PopAllOnes(h, 2);
        // Bits 15 and 3/5 are reserved (0), bit 1 is 1; IOPL and NT can be set in real mode.
        Assert.Equal(0x7FD7UL | RFlags.AC | RFlags.ID, after);
    }

    [Fact]
    public void PopfdIn32BitModeClearsRf()
    {
        var h = new CpuHarness(StartMode.Protected32);
        h.Cpu.SetFlags(RFlags.RF);
        h.Cpu.Gprs[Gpr.RSP] -= 4;
        h.Memory.WriteUInt32((uint)h.Cpu.Gprs[Gpr.RSP], (uint)(RFlags.RF | RFlags.ZF));
        h.LoadBytes(0x9D);
        h.Step();
        Assert.Equal(RFlags.ZF | RFlags.Fixed1, h.Cpu.GetFlags());
    }

    /// <summary>Enters virtual-8086 mode directly (as an IRET to VM=1 would) with code at 1000:0000.</summary>
    private static CpuHarness V86(int iopl, bool vme)
    {
        var model = vme ? CpuModel.Default with { Leaf1Edx = CpuModel.Default.Leaf1Edx | CpuidBits.Vme } : null;
        var h = new CpuHarness(StartMode.Protected32, model);
        for (var s = 0; s < 6; s++) h.Cpu.Segs[s] = SegmentRegister.RealMode(s == Seg.CS ? (ushort)0x1000 : (ushort)0x8000);
        if (vme) h.Cpu.Cr4 |= Cr4.VME;
        h.Cpu.Gprs[Gpr.RSP] = 0xFFF0;
        h.Cpu.SetFlags(RFlags.VM | ((ulong)iopl << RFlags.IoplShift));
        Assert.True(h.Cpu.V86Mode);
        Assert.Equal(3, h.Cpu.Cpl);
        return h;
    }

    [Fact]
    public void V86PushfAndPopfFaultBelowIopl3WithoutVme()
    {
        var h = V86(iopl: 0, vme: false);
        h.LoadBytes(0x9C);
        h.ExpectFault(Vectors.GP, 0);
        h.LoadBytes(0x9D);
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void V86WithIopl3PopfChangesIfButNeverIoplOrVm()
    {
        var h = V86(iopl: 3, vme: false);
        h.Memory.WriteUInt16(0x8_0000 + 0xFFF0 - 2, 0x0200); // IF, IOPL 0
        h.Cpu.Gprs[Gpr.RSP] -= 2;
        h.LoadBytes(0x9D);
        h.Step();
        Assert.True(h.Cpu.IF);
        Assert.Equal(3, h.Cpu.Iopl);
        Assert.True(h.Cpu.V86Mode);
    }

    /// <summary>VME (SDM Vol. 3A 20.3): 16-bit PUSHF/POPF at IOPL &lt; 3 use VIF in place of IF.</summary>
    [Fact]
    public void V86WithVmeVirtualisesIfThroughVif()
    {
        var h = V86(iopl: 0, vme: true);
        h.Cpu.SetFlags(h.Cpu.GetFlags() | RFlags.VIF);
        h.LoadBytes(0x9C); // pushf
        h.Step();
        var image = h.Memory.ReadUInt16(0x8_0000 + h.Cpu.Gprs[Gpr.RSP]);
        Assert.NotEqual(0, image & (int)RFlags.IF);     // VIF shown as IF
        Assert.Equal(3 << 12, image & (int)RFlags.IOPL); // IOPL shown as 3

        h.Memory.WriteUInt16(0x8_0000 + h.Cpu.Gprs[Gpr.RSP], 0x0001); // CF, IF clear
        h.LoadBytes(0x9D); // popf
        h.Step();
        Assert.Equal(0UL, h.Cpu.GetFlags() & RFlags.VIF);
        Assert.False(h.Cpu.IF);
        Assert.Equal(0, h.Cpu.Iopl);

        // Setting IF while VIP is pending, or setting TF, traps to the monitor.
        h.Cpu.SetFlags(h.Cpu.GetFlags() | RFlags.VIP);
        h.Cpu.Gprs[Gpr.RSP] -= 2;
        h.Memory.WriteUInt16(0x8_0000 + h.Cpu.Gprs[Gpr.RSP], 0x0200);
        h.LoadBytes(0x9D);
        h.ExpectFault(Vectors.GP, 0);
        // 32-bit POPFD always faults below IOPL 3.
        h.LoadBytes(0x66, 0x9D);
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void LahfAndSahfMoveTheFiveLowFlagsThroughAh()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a =>
        {
            a.mov(eax, 0x7FFF_FFFFu);
            a.add(eax, 1);      // OF, SF, AF, PF set; ZF, CF clear
            a.lahf();
            a.mov(ebx, eax);
            a.mov(ah, 0xFF);
            a.sahf();           // SF ZF AF PF CF := 1, OF kept
            a.pushfq();
            a.pop(rcx);
        });
        h.Step(8);
        Assert.Equal((RFlags.SF | RFlags.AF | RFlags.PF | RFlags.Fixed1) << 8, h[Gpr.RBX] & 0xFF00);
        Assert.Equal(RFlags.SF | RFlags.ZF | RFlags.AF | RFlags.PF | RFlags.CF | RFlags.OF, h[Gpr.RCX] & RFlags.Arith);
    }

    [Fact]
    public void LahfIn64BitModeNeedsTheLahfLmFeature()
    {
        var model = CpuModel.Default with { Ext1Ecx = 0 };
        var h = new CpuHarness(StartMode.Long64, model);
        h.Load(a => a.lahf());
        h.ExpectFault(Vectors.UD);
        h.Load(a => a.sahf());
        h.ExpectFault(Vectors.UD);
        var p = new CpuHarness(StartMode.Protected32, model);
        p.Load(a => a.lahf());
        p.Step(); // always valid outside 64-bit mode
    }

    [Fact]
    public void CarryAndDirectionFlagInstructions()
    {
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            a.mov(eax, 0);
            a.cmp(eax, 1);   // CF = 1, ZF = 0, SF = 1
            a.cmc();         // CF = 0
            a.pushfq();
            a.stc();
            a.pushfq();
            a.clc();
            a.std();
            a.pushfq();
            a.cld();
            a.pushfq();
            a.pop(rdi);
            a.pop(rsi);
            a.pop(rdx);
            a.pop(rcx);
            a.hlt();
        });
        Assert.Equal(RFlags.SF, r.Reg(Gpr.RCX) & (RFlags.CF | RFlags.SF | RFlags.ZF)); // after CMC
        Assert.Equal(RFlags.CF | RFlags.SF, r.Reg(Gpr.RDX) & (RFlags.CF | RFlags.SF)); // after STC
        Assert.Equal(RFlags.DF, r.Reg(Gpr.RSI) & (RFlags.CF | RFlags.DF));             // CLC, STD
        Assert.Equal(0UL, r.Reg(Gpr.RDI) & (RFlags.CF | RFlags.DF));                    // CLD
    }
}
