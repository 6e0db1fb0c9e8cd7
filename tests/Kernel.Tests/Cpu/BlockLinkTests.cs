using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// The run loop follows a link from a block to the block that ran after it last time. A link stands for a
/// translation the CPU may keep until it is invalidated, so INVLPG or a CR3 write must make the next
/// transfer to the same linear address run what the page tables now map there.
/// </summary>
public class BlockLinkTests
{
    private const ulong Target = 0x6000_0000;
    private const ulong Frame1 = 0x20000, Frame2 = 0x21000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RemappedCodeRunsAfterInvalidation(bool byCr3Write)
    {
        var h = new CpuHarness(StartMode.Long64);
        var pt = new PageTableBuilder(h.Memory, PagingKind.FourLevel);
        pt.IdentityMap(0x10000, 0x12000, PageTableBuilder.P | PageTableBuilder.RW);
        pt.IdentityMap(0x8E000, 0x90000, PageTableBuilder.P | PageTableBuilder.RW);
        var pte = pt.Map(Target, Frame1, PageTableBuilder.P | PageTableBuilder.RW);
        // The guest rewrites the PTE itself, so the page holding it must be mapped too.
        pt.IdentityMap(pte & ~0xFFFUL, (pte & ~0xFFFUL) + 0x1000, PageTableBuilder.P | PageTableBuilder.RW);
        h.Memory.Write(Frame1, [0xB8, 1, 0, 0, 0, 0xC3]); // mov eax, 1; ret
        h.Memory.Write(Frame2, [0xB8, 2, 0, 0, 0, 0xC3]); // mov eax, 2; ret
        h.Cpu.Cr3 = pt.Root;
        h.Cpu.FlushTlb(true);
        h.Load(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 3);
            a.xor(ebx, ebx);
            a.mov(rsi, Target);
            a.mov(rdi, pte);
            a.mov(rdx, Frame2 | PageTableBuilder.P | PageTableBuilder.RW);
            a.mov(r8, Frame1 | PageTableBuilder.P | PageTableBuilder.RW);
            a.Label(ref loop);
            a.call(rsi);
            a.shl(ebx, 4);
            a.add(ebx, eax);
            a.mov(__qword_ptr[rdi], rdx);
            a.xchg(rdx, r8);
            if (byCr3Write) { a.mov(rax, cr3); a.mov(cr3, rax); }
            else a.invlpg(__[rsi]);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        Assert.Equal(CpuExitReason.Halted, h.Cpu.Run(100));
        // The calls run frames 1, 2, 1. The block holding the call first runs in the second iteration, so
        // its link to frame 2 exists when the third remaps the page: following it would give 0x122.
        Assert.Equal(0x121UL, h[Gpr.RBX]);
    }
}
