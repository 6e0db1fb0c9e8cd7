using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// A CPU in a chosen mode with code loaded at <see cref="CodeAddress"/>, for instruction-level tests:
/// <see cref="Step"/> runs single instructions with <see cref="SoftwareCpu.StepRaw"/>, and
/// <see cref="Fault"/> expects the next one to raise an architectural exception.
/// </summary>
internal sealed class CpuHarness
{
    public const ulong CodeAddress = 0x10000;
    public const ulong StackTop = 0x90000;

    public GuestMemory Memory { get; }
    public SoftwareCpu Cpu { get; }
    public TestPlatform Platform { get; } = new();

    public CpuHarness(StartMode mode, CpuModel? model = null, ulong ramSize = 16 << 20)
    {
        Memory = new GuestMemory(ramSize);
        Cpu = new SoftwareCpu(0, Memory, Platform, model);
        Platform.Cpu = Cpu;
        switch (mode)
        {
            case StartMode.Real:
                CpuSetup.EnterRealMode(Cpu, (ushort)(CodeAddress >> 4), 0, 0xFFF0);
                Cpu.Segs[Seg.SS] = SegmentRegister.RealMode(0x8000);
                break;
            case StartMode.Protected32:
                CpuSetup.EnterFlatProtectedMode(Cpu, (uint)CodeAddress, (uint)StackTop);
                break;
            default:
                CpuSetup.EnterLongMode(Cpu, CodeAddress, StackTop);
                break;
        }
    }

    public ulong this[int gpr]
    {
        get => Cpu.Gprs[gpr];
        set => Cpu.Gprs[gpr] = value;
    }

    /// <summary>Assembles a program for the current bitness at <paramref name="at"/> and points CS:IP at it.</summary>
    public CpuHarness Load(Action<Assembler> program, ulong at = CodeAddress)
    {
        var bits = Cpu.Bitness;
        var ip = bits == 16 ? at - Cpu.Segs[Seg.CS].Base : at;
        var code = GuestRunner.Assemble(bits, ip, program);
        Memory.Write(at, code);
        Cpu.Rip = ip;
        return this;
    }

    /// <summary>Loads raw instruction bytes at the code address.</summary>
    public CpuHarness LoadBytes(params byte[] code)
    {
        Memory.Write(CodeAddress, code);
        Cpu.Rip = Cpu.Bitness == 16 ? CodeAddress - Cpu.Segs[Seg.CS].Base : CodeAddress;
        return this;
    }

    public void Step(int count = 1)
    {
        for (var k = 0; k < count; k++) Cpu.StepRaw();
    }

    /// <summary>Runs the next instruction, expecting an exception; RIP must be left at the instruction.</summary>
    public CpuFault Fault()
    {
        var rip = Cpu.Rip;
        var f = Assert.Throws<CpuFault>(() => Cpu.StepRaw());
        Assert.Equal(rip, Cpu.Rip);
        return f;
    }

    public void ExpectFault(int vector, uint? errorCode = 0)
    {
        var f = Fault();
        Assert.Equal(CpuFault.Name(vector), CpuFault.Name(f.Vector));
        if (vector is Vectors.GP or Vectors.SS or Vectors.PF) Assert.Equal(errorCode, f.ErrorCode);
    }

    /// <summary>Marks every 2 MiB page of the boot identity map user-accessible (long mode only).</summary>
    public void MakeIdentityMapUser()
    {
        Memory.WriteUInt64(CpuSetup.Pml4Address, Memory.ReadUInt64(CpuSetup.Pml4Address) | 4);
        for (ulong g = 0; g < 4; g++)
        {
            Memory.WriteUInt64(CpuSetup.PdptAddress + g * 8, Memory.ReadUInt64(CpuSetup.PdptAddress + g * 8) | 4);
            for (ulong e = 0; e < 512; e++)
            {
                var a = CpuSetup.PdAddress + g * 0x1000 + e * 8;
                Memory.WriteUInt64(a, Memory.ReadUInt64(a) | 4);
            }
        }
        Cpu.FlushTlb(includeGlobal: true);
    }

    /// <summary>
    /// Drops to CPL 3 by giving CS and SS DPL-3 descriptor caches (selector RPL 3), as an IRET or SYSRET
    /// would; in long mode the boot identity map is made user-accessible first unless the test has its own.
    /// </summary>
    public void EnterRing3(int iopl = 0, bool userIdentityMap = true)
    {
        if (Cpu.LongModeActive && userIdentityMap) MakeIdentityMapUser();
        foreach (var s in new[] { Seg.CS, Seg.SS, Seg.DS, Seg.ES })
        {
            var r = Cpu.Segs[s];
            r.Selector |= 3;
            r.Attributes |= 3 << 5;
            Cpu.Segs[s] = r;
        }
        Cpu.SetFlags((Cpu.GetFlags() & ~RFlags.IOPL) | ((ulong)iopl << RFlags.IoplShift));
        Cpu.UpdateMode();
        Assert.Equal(3, Cpu.Cpl);
    }
}
