using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Segment-register loads (SDM Vol. 2 MOV/POP/PUSH/LDS..LSS; Vol. 3A 3.4, 5.5-5.7): the hidden cache in
/// real mode, the protected-mode checks, 64-bit null SS, FS bases, the MOV SS interrupt shadow.
/// </summary>
public class SegmentationTests
{
    private static readonly ulong[] Gdt =
    [
        0,
        GuestTables.Code32(0),                                  // 0x08
        GuestTables.Data32(0),                                  // 0x10
        GuestTables.Code64(0),                                  // 0x18
        GuestTables.Segment(0x0123_4000, 0xFFFFF, 0x92, 0xC),   // 0x20: data based at 0x1234000, not yet accessed
        GuestTables.Segment(0, 0xFFFF, 0x93, 0x0),              // 0x28: 16-bit data, 64 KiB
        GuestTables.Code32(0, conforming: true),                // 0x30
        GuestTables.Data32(3),                                  // 0x38
    ];

    [Fact]
    public void RealModeLoadSetsSelectorAndBaseAndKeepsTheCachedLimit()
    {
        var g = SystemGuest.Boot(StartMode.Real, a =>
        {
            a.mov(ax, 0x1234);
            a.mov(ds, ax);
            a.mov(__dword_ptr[ebx], 0x55AA); // offset 0x20000 only works with the "unreal" 4 GiB limit
        });
        g.Cpu.Segs[Seg.DS].Limit = 0xFFFF_FFFF;
        g.Cpu.Gprs[Gpr.RBX] = 0x20000;
        g.Step(3);
        var data = g.Cpu.Segs[Seg.DS];
        Assert.Equal(0x1234, data.Selector);
        Assert.Equal(0x12340UL, data.Base);
        Assert.Equal(0xFFFF_FFFFu, data.Limit);
        Assert.Equal(0x55AAu, g.Memory.ReadUInt32(0x12340 + 0x20000));
    }

    [Fact]
    public void RealModeAccessBeyondA64KiBLimitFaults()
    {
        var g = SystemGuest.Boot(StartMode.Real, a => a.mov(__word_ptr[0xFFFF], ax));
        Assert.Equal(Vectors.GP, g.StepFault().Vector);
    }

    [Fact]
    public void NullDataSelectorLoadsButFaultsWhenUsed()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.xor(eax, eax);
            a.mov(es, ax);
            a.mov(__dword_ptr.es[0x100], eax);
        }, Gdt);
        g.Step(2);
        Assert.True(g.Cpu.Segs[Seg.ES].Unusable);
        var f = g.StepFault();
        Assert.Equal(Vectors.GP, f.Vector);
        Assert.Equal(0u, f.ErrorCode);
    }

    [Fact]
    public void LoadSetsTheAccessedBitAndCachesTheDescriptor()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.mov(ax, 0x20);
            a.mov(fs, ax);
            a.mov(eax, __dword_ptr.fs[0x10]);
        }, Gdt);
        g.Memory.WriteUInt32(0x0123_4010, 0xFEED_F00D);
        Assert.Equal(0, g.Memory.ReadByte(SystemGuest.GdtBase + 0x20 + 5) & 1);
        g.Step(3);
        Assert.Equal(1, g.Memory.ReadByte(SystemGuest.GdtBase + 0x20 + 5) & 1);
        Assert.Equal(0x0123_4000UL, g.Cpu.Segs[Seg.FS].Base);
        Assert.Equal(0xFFFF_FFFFu, g.Cpu.Segs[Seg.FS].Limit);
        Assert.Equal(0xFEED_F00DUL, g.Cpu.Gprs[Gpr.RAX]);
    }

    [Fact]
    public void DataSegmentMorePrivilegedThanRplIsRefused()
    {
        // DPL 0 data with RPL 3 at CPL 0: RPL > DPL.
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.mov(ax, 0x13);
            a.mov(ds, ax);
        }, Gdt);
        g.Step();
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)0x10), (f.Vector, f.ErrorCode));
        Assert.Equal(CpuSetupData, g.Cpu.Segs[Seg.DS].Selector);
    }

    private const ushort CpuSetupData = Actorvisor.Kernel.Boot.CpuSetup.Data;

    [Fact]
    public void In64BitModeRing0MayLoadANullSsWhoseRplIsCpl()
    {
        var g = SystemGuest.Boot(StartMode.Long64, a =>
        {
            a.xor(eax, eax);
            a.mov(ss, ax);
            a.push(rax);              // 64-bit mode ignores SS: the stack still works
            a.mov(ax, 3);
            a.mov(ss, ax);            // RPL 3 ≠ CPL 0: #GP(0)
        }, Gdt);
        g.Step(3);
        Assert.Equal(0, g.Cpu.Segs[Seg.SS].Selector);
        Assert.True(g.Cpu.Segs[Seg.SS].Unusable);
        g.Step();
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)0), (f.Vector, f.ErrorCode));
    }

    [Fact]
    public void In64BitModeLoadingFsTakesThe32BitBaseFromTheDescriptor()
    {
        var g = SystemGuest.Boot(StartMode.Long64, a =>
        {
            a.mov(ax, 0x20);
            a.mov(fs, ax);
            a.mov(rax, __qword_ptr.fs[0x20]);
        }, Gdt);
        g.Memory.WriteUInt64(0x0123_4020, 0x0102_0304_0506_0708);
        g.Step(3);
        Assert.Equal(0x0123_4000UL, g.Cpu.Segs[Seg.FS].Base);
        Assert.Equal(0x0102_0304_0506_0708UL, g.Cpu.Gprs[Gpr.RAX]);
    }

    [Fact]
    public void MovSsOpensAnInterruptShadow()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.mov(ax, 0x10);
            a.mov(ss, ax);
        }, Gdt);
        g.Step(2);
        Assert.True(g.Cpu.InterruptShadow);
    }

    [Fact]
    public void InterruptWaitsUntilTheInstructionAfterMovSs()
    {
        var g = Protected32.Create();
        var source = new OneShotInterrupt(g.Cpu, 0x40);
        g.Cpu.Interrupts = source;
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), handler = a.CreateLabel(), movEsp = a.CreateLabel(), after = a.CreateLabel();
        Protected32.Prologue(a, ref reloaded);
        a.mov(ax, Protected32.Data0);
        a.sti();                       // STI's own shadow covers MOV SS ...
        a.mov(ss, ax);                 // ... and MOV SS's shadow covers MOV ESP
        a.Label(ref movEsp);
        a.mov(esp, 0x68000);
        a.Label(ref after);
        a.nop();
        a.hlt();
        a.Label(ref handler);
        a.mov(eax, __dword_ptr[esp]);
        a.mov(__dword_ptr[Protected32.Results], eax);
        a.mov(__dword_ptr[Protected32.Results + 4], esp);
        Protected32.Exit(a, 0x55);
        var at = g.Load(a, GuestRunner.DefaultLoad, reloaded, handler, movEsp, after);
        Protected32.SetFarPointer(g, at[0]);
        Protected32.SetGate(g, 0x40, at[1]);
        var r = g.Run(1000);

        Assert.Equal(0x55u, r.ExitValue);
        Assert.Equal((uint)at[3], g.Memory.ReadUInt32(Protected32.Results));   // taken after MOV ESP
        Assert.Equal(0x68000u - 12, g.Memory.ReadUInt32(Protected32.Results + 4));
    }

    [Fact]
    public void PushSegmentWithA32BitOperandWritesOnlyTheSelectorWord()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.push(ds);
            a.pop(es);
        }, Gdt);
        var esp = g.Cpu.Gprs[Gpr.RSP];
        g.Memory.WriteUInt32(esp - 4, 0xAAAA_AAAA);
        g.Step();
        Assert.Equal(esp - 4, g.Cpu.Gprs[Gpr.RSP]);
        Assert.Equal(0xAAAA_0000u | CpuSetupData, g.Memory.ReadUInt32(esp - 4));
        g.Step();
        Assert.Equal(esp, g.Cpu.Gprs[Gpr.RSP]);
        Assert.Equal(CpuSetupData, g.Cpu.Segs[Seg.ES].Selector);
    }

    [Fact]
    public void PopSegmentThatFaultsLeavesTheStackPointer()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.push(0x1238);            // beyond the GDT
            a.pop(ds);
        }, Gdt);
        g.Step();
        var esp = g.Cpu.Gprs[Gpr.RSP];
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)0x1238), (f.Vector, f.ErrorCode));
        Assert.Equal(esp, g.Cpu.Gprs[Gpr.RSP]);
    }

    [Fact]
    public void LssLoadsStackSegmentAndPointerTogether()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a => a.lss(esp, __fword_ptr[0x9000]), Gdt);
        g.Memory.WriteUInt32(0x9000, 0x0000_F000);
        g.Memory.WriteUInt16(0x9004, 0x28);
        g.Step();
        Assert.Equal(0xF000UL, g.Cpu.Gprs[Gpr.RSP]);
        Assert.Equal(0x28, g.Cpu.Segs[Seg.SS].Selector);
        Assert.Equal(2, g.Cpu.StackAddressSize); // the 16-bit data segment makes a 16-bit stack
    }

    [Fact]
    public void MovToCsIsInvalid()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a => a.db(0x8E, 0xC8), Gdt); // mov cs, ax
        Assert.Equal(Vectors.UD, g.StepFault().Vector);
    }

    [Fact]
    public void MovFromSegmentToA32BitRegisterZeroExtends()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.mov(eax, 0xFFFF_FFFF);
            a.mov(eax, ds);
        }, Gdt);
        g.Step(2);
        Assert.Equal((ulong)CpuSetupData, g.Cpu.Gprs[Gpr.RAX]);
    }
}
