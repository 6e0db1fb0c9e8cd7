using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Iced.Intel;

namespace Actorvisor.Kernel.Tests.GuestKit;

public enum StartMode { Real, Protected32, Long64 }

/// <summary>What a guest program left behind.</summary>
public sealed record GuestResult(CpuExitReason Exit, string Console, uint? ExitValue, SoftwareCpu Cpu, TestPlatform Platform, GuestMemory Memory)
{
    public ulong Reg(int index) => Cpu.Gprs[index];
    public ulong Rax => Cpu.Gprs[Gpr.RAX];
}

/// <summary>
/// Runs guest programs written with Iced's <see cref="Assembler"/>: assembles at an address, loads into a
/// fresh machine, enters the chosen mode, and runs to HLT, to a write to the exit port, or to a budget.
/// </summary>
public static class GuestRunner
{
    public const ulong DefaultLoad = 0x10000;
    public const ulong DefaultStack = 0x90000;

    public static byte[] Assemble(int bitness, ulong address, Action<Assembler> program)
    {
        var a = new Assembler(bitness);
        program(a);
        var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), address);
        return stream.ToArray();
    }

    public static GuestResult Run(StartMode mode, Action<Assembler> program, ulong load = DefaultLoad,
        long maxInstructions = 10_000_000, ulong ramSize = 64 << 20, Action<SoftwareCpu, GuestMemory>? setup = null)
    {
        var bitness = mode switch { StartMode.Real => 16, StartMode.Protected32 => 32, _ => 64 };
        var code = Assemble(bitness, mode == StartMode.Real ? load & 0xF : load, program);
        var memory = new GuestMemory(ramSize);
        memory.Write(load, code);
        var platform = new TestPlatform();
        var cpu = new SoftwareCpu(0, memory, platform);
        platform.Cpu = cpu;
        switch (mode)
        {
            case StartMode.Real:
                CpuSetup.EnterRealMode(cpu, (ushort)(load >> 4), (ushort)(load & 0xF), 0xFFF0);
                cpu.Segs[Seg.SS] = SegmentRegister.RealMode(0x8000);
                break;
            case StartMode.Protected32:
                CpuSetup.EnterFlatProtectedMode(cpu, (uint)load, (uint)DefaultStack);
                break;
            default:
                CpuSetup.EnterLongMode(cpu, load, DefaultStack);
                break;
        }
        setup?.Invoke(cpu, memory);
        return RunLoaded(cpu, platform, memory, maxInstructions);
    }

    /// <summary>Runs an already prepared CPU until HLT with IF clear, the exit port, shutdown, or the budget.</summary>
    public static GuestResult RunLoaded(SoftwareCpu cpu, TestPlatform platform, GuestMemory memory, long maxInstructions)
    {
        CpuExitReason exit;
        var budgetEnd = cpu.InstructionCount + maxInstructions;
        while (true)
        {
            exit = cpu.Run(budgetEnd - cpu.InstructionCount);
            if (exit == CpuExitReason.Kicked && platform.ExitValue is null) continue;
            if (exit == CpuExitReason.Halted && cpu.IF && cpu.Interrupts.HasPendingInterrupt) continue;
            break;
        }
        return new GuestResult(exit, platform.Console.ToString(), platform.ExitValue, cpu, platform, memory);
    }
}
