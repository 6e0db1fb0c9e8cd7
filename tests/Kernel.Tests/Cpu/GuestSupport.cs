using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Whether this build implements instructions that other work streams own (MOV CR, RDMSR/WRMSR), found by
/// running one: tests that need them skip until they are merged, then run by themselves.
/// </summary>
internal static class GuestSupport
{
    public static bool HasMovCr { get; } = Executes(a => a.mov(rax, cr0));

    public static bool HasWrmsr { get; } = Executes(a =>
    {
        a.mov(ecx, MsrIndex.Efer);
        a.rdmsr();
    });

    /// <summary>True unless the first instruction of <paramref name="program"/> raises #UD in ring 0, 64-bit mode.</summary>
    private static bool Executes(Action<Iced.Intel.Assembler> program)
    {
        using var memory = new GuestMemory(4 << 20);
        memory.Write(GuestRunner.DefaultLoad, GuestRunner.Assemble(64, GuestRunner.DefaultLoad, program));
        var cpu = new SoftwareCpu(0, memory, new TestPlatform());
        CpuSetup.EnterLongMode(cpu, GuestRunner.DefaultLoad, GuestRunner.DefaultStack);
        try
        {
            cpu.StepRaw();
            return true;
        }
        catch (CpuFault f)
        {
            return f.Vector != Vectors.UD;
        }
    }
}
