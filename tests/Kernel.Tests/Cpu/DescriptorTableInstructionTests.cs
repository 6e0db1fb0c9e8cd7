using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// LGDT/LIDT/SGDT/SIDT, LLDT/SLDT, LTR/STR and the selector probes LAR/LSL/VERR/VERW/ARPL
/// (SDM Vol. 2 instruction pages; Vol. 3A 2.4, 5.10, 7.2.4).
/// </summary>
public class DescriptorTableInstructionTests
{
    private static readonly ulong[] Gdt =
    [
        0,
        GuestTables.Code64(0),                                 // 0x08
        GuestTables.Code32(0),                                 // 0x10
        GuestTables.Data32(0),                                 // 0x18
        GuestTables.Tss32(0xA000),                             // 0x20
        GuestTables.Segment(0xC000, 0x17, 0x82, 0),            // 0x28: LDT at 0xC000, three entries
        GuestTables.Gate(0x10, 0x1234, GuestTables.CallGate32, dpl: 3), // 0x30
        GuestTables.Segment(0, 0xFFFFF, 0x98, 0xC),            // 0x38: execute-only code
        GuestTables.Data32(3),                                 // 0x40
    ];

    private static ulong Zf(SystemGuest g) => g.Cpu.GetFlags() & RFlags.ZF;

    [Fact]
    public void SgdtAndSidtStoreWhatLgdtAndLidtLoaded()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.lgdt(__[0x9000]);
            a.lidt(__[0x9010]);
            a.sgdt(__[0x9020]);
            a.sidt(__[0x9030]);
        });
        g.Memory.WriteUInt16(0x9000, 0x47); g.Memory.WriteUInt32(0x9002, 0x00AB_C000);
        g.Memory.WriteUInt16(0x9010, 0x7FF); g.Memory.WriteUInt32(0x9012, 0xFEDC_B000);
        g.Step(4);
        Assert.Equal(0x00AB_C000UL, g.Cpu.Gdtr.Base);
        Assert.Equal(0x47, g.Cpu.Gdtr.Limit);
        Assert.Equal(0x47, g.Memory.ReadUInt16(0x9020));
        Assert.Equal(0x00AB_C000u, g.Memory.ReadUInt32(0x9022));
        Assert.Equal(0x7FF, g.Memory.ReadUInt16(0x9030));
        Assert.Equal(0xFEDC_B000u, g.Memory.ReadUInt32(0x9032));
    }

    [Fact]
    public void In64BitModeThePseudoDescriptorHasA64BitBase()
    {
        var g = SystemGuest.Boot(StartMode.Long64, a =>
        {
            a.lidt(__[0x9000]);
            a.sidt(__[0x9020]);
        });
        g.Memory.WriteUInt16(0x9000, 0xFFF); g.Memory.WriteUInt64(0x9002, 0xFFFF_8000_0012_3000);
        g.Step(2);
        Assert.Equal(0xFFFF_8000_0012_3000UL, g.Cpu.Idtr.Base);
        Assert.Equal(0xFFFF_8000_0012_3000UL, g.Memory.ReadUInt64(0x9022));
    }

    [Fact]
    public void LgdtWithA16BitOperandKeeps24BaseBits()
    {
        var g = SystemGuest.Boot(StartMode.Real, a => a.lgdt(__[0x9000]));
        g.Memory.WriteUInt16(0x9000, 0x1F); g.Memory.WriteUInt32(0x9002, 0x12AB_CDEF);
        g.Step();
        Assert.Equal(0xAB_CDEFUL, g.Cpu.Gdtr.Base);
    }

    [Fact]
    public void LgdtOutsideRing0Faults()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a => a.lgdt(__[0x9000]), FarTransferTests.Gdt);
        FarTransferTests.EnterRing3(g.Cpu, 0x23, 0x2B);
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)0), (f.Vector, f.ErrorCode));
    }

    [Fact]
    public void LtrMarksTheTssBusySoASecondLtrFaults()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.mov(ax, 0x20);
            a.ltr(ax);
            a.str(ebx);
            a.ltr(ax);
        }, Gdt);
        g.Step(3);
        Assert.Equal(0x20, g.Cpu.Tr.Selector);
        Assert.Equal(0xA000UL, g.Cpu.Tr.Base);
        Assert.Equal(0x67u, g.Cpu.Tr.Limit);
        Assert.Equal(0x20UL, g.Cpu.Gprs[Gpr.RBX]);
        Assert.Equal(0x8B, g.Memory.ReadByte(SystemGuest.GdtBase + 0x20 + 5)); // type 9 → B (busy)
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)0x20), (f.Vector, f.ErrorCode));
    }

    [Fact]
    public void LldtMakesLdtSelectorsUsable()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.mov(ax, 0x28);
            a.lldt(ax);
            a.mov(ax, 0x0C);          // LDT entry 1, RPL 0
            a.mov(ds, ax);
            a.sldt(ecx);
        }, Gdt);
        g.Memory.WriteUInt64(0xC008, GuestTables.Segment(0x5000, 0xFFF, 0x92, 0x4));
        g.Step(5);
        Assert.Equal(0xC000UL, g.Cpu.Ldtr.Base);
        Assert.Equal(0x0C, g.Cpu.Segs[Seg.DS].Selector);
        Assert.Equal(0x5000UL, g.Cpu.Segs[Seg.DS].Base);
        Assert.Equal(0xFFFu, g.Cpu.Segs[Seg.DS].Limit);
        Assert.Equal(0x28UL, g.Cpu.Gprs[Gpr.RCX]);
    }

    [Fact]
    public void LdtSelectorBeyondTheLdtLimitFaults()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.mov(ax, 0x28);
            a.lldt(ax);
            a.mov(ax, 0x1C);          // LDT entry 3: the LDT holds three
            a.mov(ds, ax);
        }, Gdt);
        g.Step(3);
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)0x1C), (f.Vector, f.ErrorCode));
    }

    [Theory]
    // selector, LAR succeeds, access rights (32-bit), LSL succeeds, limit, VERR, VERW
    [InlineData(0x10, true, 0x00C0_9A00u, true, 0xFFFF_FFFFu, true, false)]   // readable code
    [InlineData(0x18, true, 0x00C0_9200u, true, 0xFFFF_FFFFu, true, true)]    // writable data
    [InlineData(0x38, true, 0x00C0_9800u, true, 0xFFFF_FFFFu, false, false)]  // execute-only code
    [InlineData(0x20, true, 0x0000_8900u, true, 0x67u, false, false)]         // available 32-bit TSS
    [InlineData(0x30, true, 0x0000_EC00u, false, 0u, false, false)]           // call gate: LAR only
    [InlineData(0x1B, false, 0u, false, 0u, false, false)]                    // RPL 3 > DPL 0
    [InlineData(0x43, true, 0x00C0_F200u, true, 0xFFFF_FFFFu, true, true)]    // DPL 3 data
    [InlineData(0x00, false, 0u, false, 0u, false, false)]                    // null
    [InlineData(0x48, false, 0u, false, 0u, false, false)]                    // beyond the GDT
    public void ProbesReportAccessRightsLimitsAndAccessibility(int selector, bool larOk, uint rights, bool lslOk,
        uint limit, bool readable, bool writable)
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.mov(ecx, selector);
            a.mov(eax, 0xDEAD);
            a.mov(ebx, 0xBEEF);
            a.lar(eax, ecx);
            a.lsl(ebx, ecx);
            a.verr(cx);
            a.verw(cx);
        }, Gdt);
        g.Step(4);
        Assert.Equal(larOk, Zf(g) != 0);
        Assert.Equal(larOk ? rights : 0xDEAD, (uint)g.Cpu.Gprs[Gpr.RAX]);
        g.Step();
        Assert.Equal(lslOk, Zf(g) != 0);
        Assert.Equal(lslOk ? limit : 0xBEEF, (uint)g.Cpu.Gprs[Gpr.RBX]);
        g.Step();
        Assert.Equal(readable, Zf(g) != 0);
        g.Step();
        Assert.Equal(writable, Zf(g) != 0);
    }

    [Fact]
    public void ArplRaisesTheRplAndReportsWhetherItDid()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.mov(eax, 0x1234_0010);
            a.mov(ebx, 3);
            a.arpl(ax, bx);
            a.arpl(ax, bx);
        });
        g.Step(3);
        Assert.Equal(0x1234_0013UL, g.Cpu.Gprs[Gpr.RAX]);
        Assert.NotEqual(0UL, Zf(g));
        g.Step();
        Assert.Equal(0UL, Zf(g));
    }

    [Fact]
    public void SelectorInstructionsAreInvalidInRealMode()
    {
        var g = SystemGuest.Boot(StartMode.Real, a => a.str(ax));
        Assert.Equal(Vectors.UD, g.StepFault().Vector);
    }
}
