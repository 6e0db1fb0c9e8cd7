using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>Encodings whose meaning depends on what the CPU model advertises, and rare legacy instructions.</summary>
public class LegacyCornerInstructionTests
{
    [Theory]
    [InlineData(0x80UL, 7UL, false)]
    [InlineData(0x8000_0000UL, 31UL, false)]
    [InlineData(0UL, 0x1234UL, true)] // zero source: destination unchanged, ZF set (BSF), not 32 as TZCNT gives
    public void RepBsfIsBsfWithoutBmi1(ulong source, ulong expected, bool zf)
    {
        // F3 0F BC C1 = tzcnt eax, ecx on BMI1 parts; bsf eax, ecx on the CPU we model.
        var h = new CpuHarness(StartMode.Long64).LoadBytes(0xF3, 0x0F, 0xBC, 0xC1);
        h.Cpu.Gprs[Gpr.RCX] = source;
        h.Cpu.Gprs[Gpr.RAX] = 0x1234;
        h.Step();
        Assert.Equal(expected, h.Cpu.Gprs[Gpr.RAX]);
        Assert.Equal(zf, (h.Cpu.GetFlags() & RFlags.ZF) != 0);
    }

    [Fact]
    public void RepBsrIsBsrWithoutLzcnt()
    {
        // F3 0F BD C1 = lzcnt eax, ecx on LZCNT parts (would give 23); bsr eax, ecx gives the top bit's index.
        var h = new CpuHarness(StartMode.Long64).LoadBytes(0xF3, 0x0F, 0xBD, 0xC1);
        h.Cpu.Gprs[Gpr.RCX] = 0x100;
        h.Step();
        Assert.Equal(8UL, h.Cpu.Gprs[Gpr.RAX]);
    }

    [Theory]
    [InlineData(5, false)]
    [InlineData(-3, false)]
    [InlineData(10, false)]
    [InlineData(11, true)]
    [InlineData(-4, true)]
    public void BoundChecksSignedIndexAgainstThePairInMemory(int index, bool faults)
    {
        // 62 05 00 20 00 00 = bound eax, [0x2000] in 32-bit code; bounds -3..10.
        var h = new CpuHarness(StartMode.Protected32).LoadBytes(0x62, 0x05, 0x00, 0x20, 0x00, 0x00);
        h.Memory.WriteUInt32(0x2000, unchecked((uint)-3));
        h.Memory.WriteUInt32(0x2004, 10);
        h.Cpu.Gprs[Gpr.RAX] = (uint)index;
        if (faults) Assert.Equal(Vectors.BR, h.Fault().Vector);
        else
        {
            h.Step();
            Assert.Equal(CpuHarness.CodeAddress + 6, h.Cpu.Rip);
        }
    }

    [Fact]
    public void SalcCopiesCarryIntoAl()
    {
        var h = new CpuHarness(StartMode.Protected32).LoadBytes(0xF9, 0xD6, 0xF8, 0xD6); // stc; salc; clc; salc
        h.Step(2);
        Assert.Equal(0xFFUL, h.Cpu.Gprs[Gpr.RAX] & 0xFF);
        h.Step(2);
        Assert.Equal(0UL, h.Cpu.Gprs[Gpr.RAX] & 0xFF);
    }

    [Fact]
    public void WaitRaisesNmOnlyWithMpAndTs()
    {
        var h = new CpuHarness(StartMode.Long64).LoadBytes(0x9B, 0x9B);
        h.Cpu.Cr0 |= Cr0.TS;
        h.Step(); // TS alone: WAIT does not fault
        h.Cpu.Cr0 |= Cr0.MP;
        Assert.Equal(Vectors.NM, h.Fault().Vector);
    }
}
