using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

public class SmokeTests
{
    [Fact]
    public void LongModeLoopPrintsAndHalts()
    {
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 3);
            a.mov(dx, 0x3F8);
            a.Label(ref loop);
            a.mov(al, (byte)'A');
            a.add(al, cl);
            a.@out(dx, al);
            a.dec(ecx);
            a.jnz(loop);
            a.mov(rax, 0x1122334455667788);
            a.hlt();
        });
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal("DCB", r.Console);
        Assert.Equal(0x1122334455667788UL, r.Rax);
    }

    [Fact]
    public void RealModeComputesWith16BitRegisters()
    {
        var r = GuestRunner.Run(StartMode.Real, a =>
        {
            a.mov(ax, 0xFFFF);
            a.add(ax, 2);     // wraps to 1, CF set
            a.mov(bx, ax);
            a.mov(dx, 0x3F8);
            a.mov(al, (byte)'R');
            a.@out(dx, al);
            a.hlt();
        });
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal("R", r.Console);
        Assert.Equal(1UL, r.Reg(Gpr.RBX) & 0xFFFF);
    }
}
