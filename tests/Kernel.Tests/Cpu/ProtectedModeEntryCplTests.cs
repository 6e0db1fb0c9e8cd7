using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

public class ProtectedModeEntryCplTests
{
    /// <summary>
    /// Real-mode code at CS=0x1003 (low bits 11) sets CR0.PE and then runs privileged instructions before any far
    /// jump. Hardware stays at CPL 0 until CS is reloaded (SDM Vol. 3A 10.9.1); a CPL taken from the stale
    /// selector's RPL would make MOV CR0 and HLT raise #GP, and with no IDT that is a triple fault.
    /// </summary>
    [Fact]
    public void CplStaysZeroUntilCsIsReloaded()
    {
        var r = GuestRunner.Run(StartMode.Real, a =>
        {
            a.mov(eax, cr0);
            a.or(eax, 1);
            a.mov(cr0, eax);   // PE = 1; CS still holds the real-mode cache with selector 0x1003
            a.mov(ebx, cr0);   // privileged: CPL must be 0
            a.hlt();           // privileged as well
        }, load: 0x10030);
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal(0x1003, r.Cpu.Segs[Seg.CS].Selector);
        Assert.True(r.Cpu.ProtectedMode);
        Assert.Equal(0, r.Cpu.Cpl);
        Assert.Equal(1UL, r.Reg(Gpr.RBX) & 1);
    }
}
