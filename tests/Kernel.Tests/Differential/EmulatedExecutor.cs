using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// The emulated side of a differential test: one <see cref="SoftwareCpu"/> that executes a single encoded
/// instruction at <see cref="NativeExecutor.TestAddr"/> (the same linear address as natively) with given
/// registers, flags and scratch-buffer contents at <see cref="NativeExecutor.BufferAddr"/>.
/// </summary>
internal sealed class EmulatedExecutor : IDisposable
{
    private const ulong GuestStack = 0x0200_0000;

    public GuestMemory Memory { get; }
    public TestPlatform Platform { get; }
    public SoftwareCpu Cpu { get; }
    public StartMode Mode { get; }

    public EmulatedExecutor(StartMode mode = StartMode.Long64)
    {
        Mode = mode;
        Memory = new GuestMemory(64UL << 20);
        Platform = new TestPlatform();
        Cpu = new SoftwareCpu(0, Memory, Platform);
        Platform.Cpu = Cpu;
        switch (mode)
        {
            case StartMode.Long64: CpuSetup.EnterLongMode(Cpu, NativeExecutor.TestAddr, GuestStack); break;
            case StartMode.Protected32: CpuSetup.EnterFlatProtectedMode(Cpu, (uint)NativeExecutor.TestAddr, (uint)GuestStack); break;
            default: CpuSetup.EnterRealMode(Cpu, 0x1000, 0x100, 0xFFF0); break;
        }
    }

    /// <summary>Linear address instructions are placed at (real mode: CS 0x1000, IP 0x100).</summary>
    public ulong CodeAddress => Mode == StartMode.Real ? 0x10100UL : NativeExecutor.TestAddr;

    public struct Result
    {
        public ulong[] Regs;
        public ulong Flags;
        /// <summary>The exception the instruction raised, if any (registers are then as the fault left them).</summary>
        public CpuFault? Fault;
        /// <summary>How many times the instruction was re-executed (a REP string instruction yields in chunks).</summary>
        public int Steps;
    }

    /// <summary>
    /// Runs the instruction (or a straight-line sequence) to its end: a REP string instruction that yields
    /// (RIP left at itself) is stepped again, as the run loop would, up to <paramref name="maxSteps"/> times.
    /// </summary>
    public Result Run(ReadOnlySpan<byte> instruction, ulong[] regs, ulong flags, Span<byte> buffer, int maxSteps = 1000)
    {
        var at = CodeAddress;
        var ip = Mode == StartMode.Real ? 0x100UL : at;
        Memory.Write(at, instruction);
        if (!buffer.IsEmpty) Memory.Write(NativeExecutor.BufferAddr, buffer);
        for (var r = 0; r < 16; r++) Cpu.Gprs[r] = regs[r];
        Cpu.Gprs[Gpr.RSP] = Mode == StartMode.Real ? 0xFFF0 : GuestStack;
        Cpu.SetFlags((flags & (RFlags.Arith | RFlags.DF)) | RFlags.Fixed1);
        Cpu.Rip = ip;
        var res = new Result();
        var end = ip + (ulong)instruction.Length;
        try
        {
            // Until RIP leaves the code: a sequence advances through it, a yielding REP stays on itself.
            do
            {
                Cpu.StepRaw();
                res.Steps++;
            } while (Cpu.Rip >= ip && Cpu.Rip < end && res.Steps < maxSteps);
            if (Cpu.Rip != end) throw new InvalidOperationException($"RIP went to 0x{Cpu.Rip:x}");
        }
        catch (CpuFault f)
        {
            res.Fault = f;
        }
        res.Regs = (ulong[])Cpu.Gprs.Clone();
        res.Regs[Gpr.RSP] = regs[Gpr.RSP];
        res.Flags = Cpu.GetFlags();
        if (!buffer.IsEmpty) Memory.Read(NativeExecutor.BufferAddr, buffer);
        return res;
    }

    public void Dispose() => Memory.Dispose();
}
