using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Self-modifying code (SDM Vol. 3A, 9.1.3): a store to bytes the CPU has decoded must be seen by the next
/// execution of them, whether the block holding them is cached from an earlier loop iteration or is the
/// one running now.
/// </summary>
public class SelfModifyingCodeTests
{
    /// <summary>
    /// A loop patches the immediate of an instruction it already executed (same page, block cached by the
    /// previous iteration): each iteration must add the value the previous one stored.
    /// </summary>
    [Fact]
    public void PatchingAnInstructionOfACachedLoopBlockTakesEffectNextIteration()
    {
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 5);
            a.xor(ebx, ebx);
            a.lea(rdi, __[loop]);
            a.Label(ref loop);
            a.db(0xB8, 100, 0, 0, 0);          // mov eax, imm32 (imm at loop + 1)
            a.add(ebx, eax);
            a.mov(__dword_ptr[rdi + 1], ecx);  // next iteration loads the current count
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        // 100 + 5 + 4 + 3 + 2; a stale block would give 500.
        Assert.Equal(114UL, r.Reg(Gpr.RBX));
    }

    /// <summary>A store to the very next instruction of the running block must change what runs next.</summary>
    [Theory]
    [InlineData(StartMode.Long64)]
    [InlineData(StartMode.Protected32)]
    public void PatchingTheNextInstructionOfTheRunningBlock(StartMode mode)
    {
        var imm = BitConverter.GetBytes((uint)GuestRunner.DefaultLoad + 17);
        var r = GuestRunner.Run(mode, a => a.db(
        [
            0xB8, 0x11, 0x11, 0x11, 0x11,                                   //  0: mov eax, 0x11111111
            0xBF, imm[0], imm[1], imm[2], imm[3],                          //  5: mov edi, address of the imm at 17
            0xC7, 0x07, 0x42, 0x00, 0x00, 0x00,                             // 10: mov dword [rdi/edi], 0x42
            0xB8, 0x11, 0x11, 0x11, 0x11,                                   // 16: mov eax, 0x11111111 (patched)
            0xF4,                                                           // 21: hlt
        ]));
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal(0x42UL, r.Rax);
    }

    /// <summary>
    /// Invalidation follows the physical page: a store through a second linear mapping (an alias) of the
    /// code page must still reach the cached block.
    /// </summary>
    [Fact]
    public void StoreThroughAnAliasMappingInvalidatesTheCode()
    {
        var h = new CpuHarness(StartMode.Long64);
        var pt = new PageTableBuilder(h.Memory, PagingKind.FourLevel);
        pt.IdentityMap(0x10000, 0x12000, PageTableBuilder.P | PageTableBuilder.RW);
        pt.IdentityMap(0x8E000, 0x90000, PageTableBuilder.P | PageTableBuilder.RW);
        const ulong alias = 0x5000_0000;
        pt.Map(alias, 0x10000, PageTableBuilder.P | PageTableBuilder.RW);
        h.Cpu.Cr3 = pt.Root;
        h.Cpu.FlushTlb(true);
        h.Load(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 4);
            a.xor(ebx, ebx);
            a.Label(ref loop);
            a.db(0xB8, 1, 0, 0, 0);                       // mov eax, imm32 at offset 7
            a.add(ebx, eax);
            a.mov(__dword_ptr[alias + 7 + 1], ecx);       // patch via the alias: a new value each time
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        Assert.Equal(CpuExitReason.Halted, h.Cpu.Run(100));
        // 1 + 4 + 3 + 2; from the third iteration on, the loop block is a cached one (a stale one gives 12).
        Assert.Equal(10UL, h[Gpr.RBX]);
    }

    /// <summary>Real-mode code patching a jump displacement ahead of it (a classic in boot code).</summary>
    [Fact]
    public void RealModePatchOfABranchTargetAhead()
    {
        var r = GuestRunner.Run(StartMode.Real, a =>
        {
            // 0: mov byte [cs:0x0A], 3  (2E C6 06 0A 00 03) -> turns "jmp +0" at 9 into "jmp +3"
            a.db(0x2E, 0xC6, 0x06, 0x0A, 0x00, 0x03);
            a.db(0x90, 0x90, 0x90);        // 6..8
            a.db(0xEB, 0x00);              // 9: jmp short +0
            a.db(0xB0, (byte)'A', 0xF4);   // 11: mov al, 'A'; hlt (the unpatched path)
            a.db(0xB0, (byte)'B', 0xF4);   // 14: mov al, 'B'; hlt
        });
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal((ulong)'B', r.Rax & 0xFF);
    }
}
