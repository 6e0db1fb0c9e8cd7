using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// The run loop follows a link from a block to the block that ran after it last time. A link stands for a
/// translation the CPU may keep until it is invalidated, so INVLPG or a CR3 write (a global page: INVLPG or a
/// CR4.PGE toggle) must make the next transfer to the same linear address run what the page tables now map there.
/// </summary>
public class BlockLinkTests
{
    private const ulong Target = 0x6000_0000;
    private const ulong Frame1 = 0x20000, Frame2 = 0x21000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RemappedCodeRunsAfterInvalidation(bool byCr3Write) =>
        // The calls run frames 1, 2, 1. The block holding the call first runs in the second iteration, so
        // its link to frame 2 exists when the third remaps the page: following it would give 0x122.
        Assert.Equal(0x121UL, RunRemapping(global: false, byCr3Write ? Invalidation.Cr3Write : Invalidation.Invlpg));

    /// <summary>
    /// A global page (G with CR4.PGE) keeps its translation across a CR3 write, in the TLB and so in the links
    /// (SDM 4.10.2.4; Linux's kernel text is global and it writes CR3 thousands of times in a boot); INVLPG of the
    /// page and a CR4.PGE toggle drop it, and the remapped code runs.
    /// </summary>
    [Theory]
    [InlineData(Invalidation.Cr3Write, 0x111UL)]
    [InlineData(Invalidation.Invlpg, 0x121UL)]
    [InlineData(Invalidation.PgeToggle, 0x121UL)]
    public void AGlobalPagesCodeStaysAcrossCr3WritesUntilInvalidated(Invalidation how, ulong expected) =>
        Assert.Equal(expected, RunRemapping(global: true, how));

    public enum Invalidation { Cr3Write, Invlpg, PgeToggle }

    /// <summary>Calls the code at <see cref="Target"/> three times, remapping its page between frames 1 and 2 after each call.</summary>
    private static ulong RunRemapping(bool global, Invalidation how)
    {
        var h = new CpuHarness(StartMode.Long64);
        var pt = new PageTableBuilder(h.Memory, PagingKind.FourLevel);
        pt.IdentityMap(0x10000, 0x12000, PageTableBuilder.P | PageTableBuilder.RW);
        pt.IdentityMap(0x8E000, 0x90000, PageTableBuilder.P | PageTableBuilder.RW);
        var flags = PageTableBuilder.P | PageTableBuilder.RW | (global ? PageTableBuilder.G : 0);
        var pte = pt.Map(Target, Frame1, flags);
        // The guest rewrites the PTE itself, so the page holding it must be mapped too.
        pt.IdentityMap(pte & ~0xFFFUL, (pte & ~0xFFFUL) + 0x1000, PageTableBuilder.P | PageTableBuilder.RW);
        h.Memory.Write(Frame1, [0xB8, 1, 0, 0, 0, 0xC3]); // mov eax, 1; ret
        h.Memory.Write(Frame2, [0xB8, 2, 0, 0, 0, 0xC3]); // mov eax, 2; ret
        if (global) h.Cpu.Cr4 |= Cr4.PGE;
        h.Cpu.Cr3 = pt.Root;
        h.Cpu.FlushTlb(true);
        h.Load(a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 3);
            a.xor(ebx, ebx);
            a.mov(rsi, Target);
            a.mov(rdi, pte);
            a.mov(rdx, Frame2 | flags);
            a.mov(r8, Frame1 | flags);
            a.Label(ref loop);
            a.call(rsi);
            a.shl(ebx, 4);
            a.add(ebx, eax);
            a.mov(__qword_ptr[rdi], rdx);
            a.xchg(rdx, r8);
            switch (how)
            {
                case Invalidation.Cr3Write: a.mov(rax, cr3); a.mov(cr3, rax); break;
                case Invalidation.Invlpg: a.invlpg(__[rsi]); break;
                default: a.mov(rax, cr4); a.btr(rax, 7); a.mov(cr4, rax); a.bts(rax, 7); a.mov(cr4, rax); break;
            }
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        Assert.Equal(CpuExitReason.Halted, h.Cpu.Run(200));
        return h[Gpr.RBX];
    }
}
