using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>MOV CR/DR, LMSW/SMSW/CLTS, INVLPG, cache and hint instructions, CLI/STI (SDM Vol. 2 and 3A ch. 2).</summary>
public class SystemInstructionTests
{
    [Fact]
    public void MovFromCr0AtCpl3RaisesGp()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.EnterRing3();
        h.Load(a => a.mov(rax, cr0));
        h.ExpectFault(Vectors.GP, 0);
    }

    [Theory]
    [InlineData(new byte[] { 0x0F, 0x20, 0xC8 })]       // mov rax, cr1
    [InlineData(new byte[] { 0x0F, 0x22, 0xE8 })]       // mov cr5, rax
    [InlineData(new byte[] { 0x44, 0x0F, 0x22, 0xC8 })] // mov cr9, rax
    [InlineData(new byte[] { 0x44, 0x0F, 0x21, 0xC0 })] // mov rax, dr8
    public void NonexistentControlAndDebugRegistersAreUndefined(byte[] code)
    {
        var h = new CpuHarness(StartMode.Long64);
        h.LoadBytes(code);
        h.ExpectFault(Vectors.UD);
    }

    [Fact]
    public void Cr0RejectsInvalidCombinationsAndKeepsEtSet()
    {
        var h = new CpuHarness(StartMode.Protected32);
        // PG without PE.
        h.Load(a => { a.mov(eax, 0x8000_0000u); a.mov(cr0, eax); });
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
        // NW without CD.
        h.Load(a => { a.mov(eax, 0x2000_0001u); a.mov(cr0, eax); });
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
        // ET reads as 1 whatever is written; undefined bits read as 0.
        h.Load(a => { a.mov(eax, 0x0000_FF21u); a.mov(cr0, eax); a.mov(ebx, cr0); });
        h.Step(3);
        Assert.Equal(Cr0.PE | Cr0.ET | Cr0.NE, h[Gpr.RBX]);
    }

    [Fact]
    public void Cr0UpperHalfIsReservedIn64BitMode()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => { a.mov(rax, cr0); a.mov(rbx, 1UL << 32); a.or(rax, rbx); a.mov(cr0, rax); });
        h.Step(3);
        h.ExpectFault(Vectors.GP, 0);
    }

    /// <summary>
    /// IA-32e activation (SDM 9.8.5): PAE, then EFER.LME, then CR0.PG sets EFER.LMA; the CPU is then in
    /// compatibility mode (CS.L = 0). Clearing PG leaves IA-32e mode and clears LMA.
    /// </summary>
    [Fact]
    public void SettingPagingWithLmeActivatesLongModeAndClearingItLeaves()
    {
        var r = GuestRunner.Run(StartMode.Protected32, a =>
        {
            a.mov(eax, 0x2000u);          // CpuSetup-style identity tables written by the setup callback
            a.mov(cr3, eax);
            a.mov(eax, (uint)Cr4.PAE);
            a.mov(cr4, eax);
            a.mov(ecx, MsrIndex.Efer);
            a.rdmsr();
            a.or(eax, (uint)Efer.LME);
            a.wrmsr();
            a.mov(eax, cr0);
            a.or(eax, 0x8000_0000u);
            a.mov(cr0, eax);              // IA-32e mode, compatibility sub-mode
            a.mov(ecx, MsrIndex.Efer);
            a.rdmsr();
            a.mov(ebx, eax);              // EFER with LMA
            a.mov(dx, 0x3F8);
            a.mov(al, (byte)'C');
            a.@out(dx, al);               // still running 32-bit code, through the page tables
            a.mov(eax, cr0);
            a.and(eax, 0x7FFF_FFFFu);
            a.mov(cr0, eax);              // leave IA-32e mode
            a.rdmsr();
            a.mov(esi, eax);              // EFER without LMA
            a.hlt();
        }, setup: (cpu, mem) => global::Actorvisor.Kernel.Boot.CpuSetup.WriteIdentityPageTables(mem));
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal("C", r.Console);
        Assert.Equal(Efer.LME | Efer.LMA, r.Reg(Gpr.RBX) & (Efer.LME | Efer.LMA));
        Assert.Equal(Efer.LME, r.Reg(Gpr.RSI) & (Efer.LME | Efer.LMA));
        Assert.False(r.Cpu.LongModeActive);
        Assert.Equal(32, r.Cpu.Bitness);
    }

    /// <summary>MOV CR0 switches between real and protected mode; the code size stays the CS cache's (16-bit).</summary>
    [Fact]
    public void MovToCr0TogglesProtectedMode()
    {
        var h = new CpuHarness(StartMode.Real);
        h.Load(a => { a.mov(eax, cr0); a.or(al, 1); a.mov(cr0, eax); a.and(al, 0xFE); a.mov(cr0, eax); });
        h.Step(3);
        Assert.True(h.Cpu.ProtectedMode);
        Assert.Equal(16, h.Cpu.Bitness);
        Assert.Equal(0, h.Cpu.Cpl);
        Assert.True(h.Cpu.EndBlock);
        h.Step(2);
        Assert.False(h.Cpu.ProtectedMode);
        Assert.Equal(Cr0.ET, h.Cpu.Cr0 & (Cr0.ET | Cr0.PE));
    }

    [Fact]
    public void PagingWithLmeButWithoutPaeRaisesGp()
    {
        var h = new CpuHarness(StartMode.Protected32);
        global::Actorvisor.Kernel.Boot.CpuSetup.WriteIdentityPageTables(h.Memory);
        h.Cpu.Cr3 = global::Actorvisor.Kernel.Boot.CpuSetup.Pml4Address;
        h.Cpu.WriteMsr(MsrIndex.Efer, Efer.LME);
        h.Load(a => { a.mov(eax, cr0); a.or(eax, 0x8000_0000u); a.mov(cr0, eax); });
        h.Step(2);
        h.ExpectFault(Vectors.GP, 0);
        Assert.False(h.Cpu.PagingEnabled);
        Assert.Equal(0UL, h.Cpu.EferValue & Efer.LMA);
    }

    [Fact]
    public void ClearingPagingIn64BitModeRaisesGp()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => { a.mov(rax, cr0); a.and(eax, 0x7FFF_FFFF); a.mov(cr0, rax); });
        h.Step(2);
        h.ExpectFault(Vectors.GP, 0);
        Assert.True(h.Cpu.LongModeActive);
    }

    [Theory]
    [InlineData(Cr4.LA57)]
    [InlineData(Cr4.OSXSAVE)]
    [InlineData(Cr4.PCIDE)]
    [InlineData(Cr4.SMEP)]
    [InlineData(Cr4.VME)] // the default model does not advertise VME
    public void Cr4BitsTheModelLacksRaiseGp(ulong bit)
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => { a.mov(rax, cr4); a.mov(rbx, bit); a.or(rax, rbx); a.mov(cr4, rax); });
        h.Step(3);
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void Cr4AcceptsModelBitsAndRefusesToDropPaeInLongMode()
    {
        var h = new CpuHarness(StartMode.Long64);
        var bits = Cr4.PAE | Cr4.PGE | Cr4.PSE | Cr4.TSD | Cr4.DE | Cr4.OSFXSR | Cr4.OSXMMEXCPT | Cr4.PCE;
        h.Load(a => { a.mov(rax, bits); a.mov(cr4, rax); a.mov(rbx, cr4); a.mov(eax, (uint)Cr4.PGE); a.mov(cr4, rax); });
        h.Step(3);
        Assert.Equal(bits, h[Gpr.RBX]);
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void Cr3BitsAboveMaxPhysAddrRaiseGpInLongMode()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => { a.mov(rax, (1UL << 40) | 0x2000); a.mov(cr3, rax); });
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
        Assert.Equal(global::Actorvisor.Kernel.Boot.CpuSetup.Pml4Address, h.Cpu.Cr3);
    }

    [Fact]
    public void Cr8HoldsTheTaskPriorityClass()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => { a.mov(eax, 0xB); a.mov(cr8, rax); a.mov(rbx, cr8); a.mov(eax, 0x10); a.mov(cr8, rax); });
        h.Step(3);
        Assert.Equal(0xBUL, h[Gpr.RBX]);
        Assert.Equal(0xBUL, h.Cpu.Cr8);
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void Dr4AndDr5AliasDr6AndDr7UnlessDebugExtensionsAreOn()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a =>
        {
            a.mov(eax, 0x1);
            a.mov(dr5, rax);      // = DR7: L0
            a.mov(rbx, dr7);
            a.mov(rcx, dr4);      // = DR6
            a.mov(rax, cr4);
            a.or(eax, (uint)Cr4.DE);
            a.mov(cr4, rax);
            a.mov(rdx, dr4);
        });
        h.Step(4);
        Assert.Equal(0x401UL, h[Gpr.RBX]);          // bit 10 reads as 1
        Assert.Equal(0xFFFF_0FF0UL, h[Gpr.RCX]);    // DR6 power-on value
        h.Step(3);
        h.ExpectFault(Vectors.UD);
    }

    [Fact]
    public void Dr6AndDr7KeepTheirFixedBitsAndRejectUpperHalves()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a =>
        {
            a.mov(eax, 0xFFFF_FFFFu);
            a.mov(dr6, rax);
            a.mov(rbx, dr6);
            a.mov(eax, 0xFFFF_DFFFu);    // everything but GD, which would make the next access fault
            a.mov(dr7, rax);
            a.mov(rcx, dr7);
            a.mov(rax, 1UL << 32);
            a.mov(dr7, rax);
        });
        h.Step(6);
        Assert.Equal(0xFFFF_EFFFUL, h[Gpr.RBX]); // bit 12 always 0; B0-B3, BD, BS, BT written
        Assert.Equal(0xFFFF_07FFUL, h[Gpr.RCX]); // bits 11, 12, 14, 15 read as 0, bit 10 as 1
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void GeneralDetectMakesDebugRegisterAccessFaultWithBdSet()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => { a.mov(eax, 1 << 13); a.mov(dr7, rax); a.mov(rbx, dr0); });
        h.Step(2);
        h.ExpectFault(Vectors.DB);
        Assert.NotEqual(0UL, h.Cpu.Dr[6] & (1 << 13));
        Assert.Equal(0UL, h.Cpu.Dr[7] & (1 << 13)); // cleared so the handler can use the registers
    }

    [Fact]
    public void DebugRegisterAccessAtCpl3RaisesGp()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.EnterRing3();
        h.Load(a => a.mov(rax, dr7));
        h.ExpectFault(Vectors.GP, 0);
    }

    /// <summary>LMSW loads PE/MP/EM/TS and cannot clear PE; from real mode it enters protected mode.</summary>
    [Fact]
    public void LmswSetsLowBitsAndCannotClearPe()
    {
        var h = new CpuHarness(StartMode.Real);
        h.Load(a => { a.mov(ax, 0xF); a.lmsw(ax); });
        h.Step(2);
        Assert.Equal(0xFUL, h.Cpu.Cr0 & 0xF);
        Assert.True(h.Cpu.ProtectedMode);
        h.Load(a => { a.mov(ax, 0x0); a.lmsw(ax); a.smsw(bx); }, at: 0x10100);
        h.Step(3);
        Assert.Equal(Cr0.PE, h.Cpu.Cr0 & 0xF);
        Assert.Equal((ushort)h.Cpu.Cr0, (ushort)h[Gpr.RBX]);
    }

    [Fact]
    public void SmswWorksAtCpl3AndStoresSixteenBitsToMemory()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.EnterRing3();
        h.Memory.WriteUInt64(0x20000, ulong.MaxValue);
        h.Load(a => { a.mov(ebx, 0x20000); a.smsw(__word_ptr[rbx]); a.smsw(rcx); });
        h.Step(3);
        Assert.Equal(0xFFFF_FFFF_FFFF_0000UL | (ushort)h.Cpu.Cr0, h.Memory.ReadUInt64(0x20000));
        Assert.Equal(h.Cpu.Cr0, h[Gpr.RCX]);
    }

    [Fact]
    public void CltsClearsTsAtCpl0AndFaultsAtCpl3()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Cpu.Cr0 |= Cr0.TS;
        h.Load(a => a.clts());
        h.Step();
        Assert.Equal(0UL, h.Cpu.Cr0 & Cr0.TS);
        h.EnterRing3();
        h.Load(a => a.clts());
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void PrivilegedCacheInstructionsFaultAtCpl3()
    {
        foreach (var program in new Action<Iced.Intel.Assembler>[]
                 {
                     a => a.wbinvd(), a => a.invd(), a => a.invlpg(__[rax]), a => a.hlt(), a => a.rdmsr(), a => a.wrmsr(),
                 })
        {
            var h = new CpuHarness(StartMode.Long64);
            h.EnterRing3();
            h.Load(program);
            h.ExpectFault(Vectors.GP, 0);
        }
    }

    [Fact]
    public void HintsAndFencesRunAtAnyPrivilegeAndNeverFault()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.EnterRing3();
        // Prefetches of a non-canonical address and of unmapped memory must not fault.
        h.Load(a =>
        {
            a.mov(rax, 0x8000_0000_0000_0000UL);
            a.prefetchnta(__byte_ptr[rax]);
            a.prefetcht0(__byte_ptr[rax]);
            a.prefetcht1(__byte_ptr[rax]);
            a.prefetcht2(__byte_ptr[rax]);
            a.mfence();
            a.lfence();
            a.sfence();
            a.mov(ebx, 0x20000);
            a.clflush(__byte_ptr[rbx]);
        });
        h.Step(10);
        Assert.Empty(h.Cpu.Unimplemented);
    }

    [Fact]
    public void ClflushChecksPagingLikeARead()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => { a.mov(rax, 0x1_0000_0000UL << 4); a.clflush(__byte_ptr[rax]); }); // beyond the 4 GiB identity map
        h.Step();
        var f = h.Fault();
        Assert.Equal(Vectors.PF, f.Vector);
        Assert.Equal(0u, f.ErrorCode); // not present, read, supervisor
    }

    [Theory]
    [InlineData(new byte[] { 0x0F, 0x0B })]             // ud2
    [InlineData(new byte[] { 0x0F, 0xB9, 0xC0 })]       // ud1 eax, eax
    [InlineData(new byte[] { 0x0F, 0xFF, 0xC0 })]       // ud0 eax, eax
    [InlineData(new byte[] { 0x0F, 0x01, 0xC8 })]       // monitor: CPUID.1:ECX.MONITOR is clear
    [InlineData(new byte[] { 0x0F, 0x01, 0xC9 })]       // mwait
    [InlineData(new byte[] { 0x0F, 0x01, 0xD0 })]       // xgetbv: no XSAVE
    [InlineData(new byte[] { 0x0F, 0x01, 0xD1 })]       // xsetbv
    public void UndefinedAndUnadvertisedInstructionsRaiseUdWithoutCountingAsMissing(byte[] code)
    {
        var h = new CpuHarness(StartMode.Long64);
        h.LoadBytes(code);
        h.ExpectFault(Vectors.UD);
        Assert.Empty(h.Cpu.Unimplemented);
    }

    [Fact]
    public void InvlpgAcceptsNonCanonicalAddressesAsNoOp()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a => { a.mov(rax, 0x8000_0000_0000_0000UL); a.invlpg(__[rax]); });
        h.Step(2);
    }

    [Fact]
    public void CliAndStiFollowIoplAtCpl3()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.EnterRing3(iopl: 0);
        h.Load(a => a.cli());
        h.ExpectFault(Vectors.GP, 0);
        h.Load(a => a.sti());
        h.ExpectFault(Vectors.GP, 0);

        h.EnterRing3(iopl: 3);
        h.Load(a => { a.sti(); a.cli(); });
        h.Step();
        Assert.True(h.Cpu.IF);
        Assert.True(h.Cpu.InterruptShadow);
        h.Step();
        Assert.False(h.Cpu.IF);
    }

    [Fact]
    public void StiWhenIfIsAlreadySetOpensNoShadow()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Cpu.SetFlags(h.Cpu.GetFlags() | RFlags.IF);
        h.Load(a => a.sti());
        h.Step();
        Assert.False(h.Cpu.InterruptShadow);
    }

    /// <summary>With CR4.PVI (a model that advertises VME), CLI/STI at CPL 3 and IOPL 0 act on VIF.</summary>
    [Fact]
    public void ProtectedModeVirtualInterruptsRedirectCliAndStiToVif()
    {
        var model = CpuModel.Default with { Leaf1Edx = CpuModel.Default.Leaf1Edx | CpuidBits.Vme };
        var h = new CpuHarness(StartMode.Long64, model);
        h.Cpu.Cr4 |= Cr4.PVI;
        h.Cpu.SetFlags(h.Cpu.GetFlags() | RFlags.IF | RFlags.VIF);
        h.EnterRing3(iopl: 0);
        h.Load(a => { a.cli(); a.sti(); a.sti(); });
        h.Step();
        Assert.True(h.Cpu.IF);
        Assert.Equal(0UL, h.Cpu.GetFlags() & RFlags.VIF);
        h.Step();
        Assert.NotEqual(0UL, h.Cpu.GetFlags() & RFlags.VIF);
        // STI with VIP pending traps to the monitor.
        h.Cpu.SetFlags(h.Cpu.GetFlags() | RFlags.VIP);
        h.ExpectFault(Vectors.GP, 0);
    }
}
