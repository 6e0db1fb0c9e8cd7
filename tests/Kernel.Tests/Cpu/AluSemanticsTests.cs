using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.Differential;
using Iced.Intel;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Architectural corners of the ALU group that a user-mode host run cannot show: #UD for LOCK where it is
/// not allowed, #GP for a misaligned CMPXCHG16B, faults of locked and conditional accesses before any
/// change, and locked operations on MMIO and across pages.
/// </summary>
public class AluSemanticsTests
{
    private const ulong Buf = NativeExecutor.BufferAddr;
    private const ulong ReadOnly = 0x0280_0000, Mmio = 0xF000_0000;

    private static EmulatedExecutor NewCpu()
    {
        var emu = new EmulatedExecutor();
        // A read-only 2 MiB page (CR0.WP is set, so supervisor writes fault too).
        emu.Memory.WriteUInt64(CpuSetup.PdAddress + (ReadOnly >> 21) * 8, ReadOnly | 0x81);
        emu.Cpu.FlushTlb(includeGlobal: true);
        return emu;
    }

    private static byte[] Encode(Instruction i) => Forms.Encode(i);

    [Theory]
    [InlineData("F001C3")]          // lock add ebx, eax (register destination)
    [InlineData("F03903")]          // lock cmp [rbx], eax
    [InlineData("F08503")]          // lock test [rbx], eax
    [InlineData("F00FA303")]        // lock bt [rbx], eax
    [InlineData("F08B03")]          // lock mov eax, [rbx]
    [InlineData("F00FC7C8")]        // lock cmpxchg8b with a register operand
    [InlineData("0FC7C8")]          // cmpxchg8b with a register operand
    [InlineData("F00FAF03")]        // lock imul eax, [rbx]
    public void LockWhereNotAllowedIsInvalidOpcode(string hex)
    {
        using var emu = NewCpu();
        var regs = new ulong[16];
        regs[Gpr.RBX] = Buf;
        var e = emu.Run(Convert.FromHexString(hex), regs, 0, new byte[NativeExecutor.BufferSize]);
        Assert.Equal(Vectors.UD, e.Fault?.Vector);
    }

    [Fact]
    public void MisalignedCmpxchg16bIsGeneralProtection()
    {
        using var emu = NewCpu();
        var regs = new ulong[16];
        regs[Gpr.R8] = Buf + 8;
        var buffer = new byte[NativeExecutor.BufferSize];
        var e = emu.Run(Encode(Instruction.Create(Code.Cmpxchg16b_m128, new MemoryOperand(Register.R8))), regs, 0, buffer);
        Assert.Equal(Vectors.GP, e.Fault?.Vector);
        Assert.Equal(0U, e.Fault!.ErrorCode);
        // Aligned, the same memory compares equal (zeros) and takes RCX:RBX.
        regs[Gpr.R8] = Buf + 16;
        regs[Gpr.RBX] = 0x1111;
        regs[Gpr.RCX] = 0x2222;
        e = emu.Run(Encode(Instruction.Create(Code.Cmpxchg16b_m128, new MemoryOperand(Register.R8))), regs, 0, buffer);
        Assert.Null(e.Fault);
        Assert.NotEqual(0UL, e.Flags & RFlags.ZF);
        Assert.Equal(0x1111UL, BitConverter.ToUInt64(buffer, 16));
        Assert.Equal(0x2222UL, BitConverter.ToUInt64(buffer, 24));
    }

    public static TheoryData<string> LockedWrites => new()
    {
        "F0830301",     // lock add dword [rbx], 1
        "F0FF03",       // lock inc dword [rbx]
        "F00FC103",     // lock xadd [rbx], eax
        "8703",         // xchg [rbx], eax (implicitly locked)
        "F00FB10B",     // lock cmpxchg [rbx], ecx
        "F00FBA2B05",   // lock bts dword [rbx], 5
        "F0F71B",       // lock neg dword [rbx]
        "F00FC70B",     // lock cmpxchg8b [rbx]
    };

    [Theory]
    [MemberData(nameof(LockedWrites))]
    public void LockedWriteToAReadOnlyPageFaultsBeforeAnyChange(string hex)
    {
        using var emu = NewCpu();
        emu.Memory.WriteUInt64(ReadOnly + 0x100, 0x0123_4567_89AB_CDEF);
        var regs = new ulong[16];
        regs[Gpr.RBX] = ReadOnly + 0x100;
        regs[Gpr.RAX] = 0x0123_4567_89AB_CDEF & 0xFFFF_FFFF; // CMPXCHG would succeed
        regs[Gpr.RDX] = 0x0123_4567;
        regs[Gpr.RCX] = 0x5555;
        var flags = RFlags.CF | RFlags.ZF;
        var e = emu.Run(Convert.FromHexString(hex), regs, flags, default);
        Assert.Equal(Vectors.PF, e.Fault?.Vector);
        Assert.Equal(PfError.Present | PfError.Write, e.Fault!.ErrorCode & (PfError.Present | PfError.Write));
        Assert.Equal(0x0123_4567_89AB_CDEFUL, emu.Memory.ReadUInt64(ReadOnly + 0x100));
        for (var r = 0; r < 16; r++)
            if (r != Gpr.RSP) Assert.Equal(regs[r], e.Regs[r]);
        Assert.Equal(flags, e.Flags & RFlags.Arith);
    }

    [Fact]
    public void LockedOperationOnMmioGoesThroughThePlatform()
    {
        using var emu = NewCpu();
        var regs = new ulong[16];
        regs[Gpr.RBX] = Mmio;
        // lock add dword [rbx], 1: the test platform reads MMIO as all ones, so it writes back 0.
        var e = emu.Run(Convert.FromHexString("F0830301"), regs, 0, default);
        Assert.Null(e.Fault);
        Assert.Equal([(Mmio, 4, 0UL)], emu.Platform.MmioWrites);
        Assert.NotEqual(0UL, e.Flags & RFlags.ZF);
        Assert.NotEqual(0UL, e.Flags & RFlags.CF);
    }

    [Fact]
    public void LockedOperationAcrossAPageBoundary()
    {
        using var emu = NewCpu();
        var buffer = new byte[NativeExecutor.BufferSize];
        BitConverter.GetBytes(0x00FF_FFFF_FFFF_FFFFUL).CopyTo(buffer, 0xFFC);
        var regs = new ulong[16];
        regs[Gpr.RBX] = Buf + 0xFFC;
        // lock add qword [rbx], 1
        var e = emu.Run(Convert.FromHexString("F04883030 1".Replace(" ", "")), regs, 0, buffer);
        Assert.Null(e.Fault);
        Assert.Equal(0x0100_0000_0000_0000UL, BitConverter.ToUInt64(buffer, 0xFFC));
    }

    [Fact]
    public void CmovReadsItsMemorySourceEvenWhenTheConditionIsFalse()
    {
        using var emu = NewCpu();
        const ulong hole = 0x0300_0000;
        emu.Memory.WriteUInt64(CpuSetup.PdAddress + (hole >> 21) * 8, 0);
        emu.Cpu.FlushTlb(includeGlobal: true);
        var regs = new ulong[16];
        regs[Gpr.RBX] = hole;
        regs[Gpr.RAX] = 0xFFFF_FFFF_1234_5678;
        // cmovz eax, [rbx] with ZF clear: still a #PF.
        var e = emu.Run(Encode(Instruction.Create(Code.Cmove_r32_rm32, Register.EAX, new MemoryOperand(Register.RBX))), regs, 0, default);
        Assert.Equal(Vectors.PF, e.Fault?.Vector);
        Assert.Equal(0xFFFF_FFFF_1234_5678UL, e.Regs[Gpr.RAX]);
        // From readable memory with the condition false, the 32-bit destination is still zero-extended.
        regs[Gpr.RBX] = Buf;
        e = emu.Run(Encode(Instruction.Create(Code.Cmove_r32_rm32, Register.EAX, new MemoryOperand(Register.RBX))), regs, 0, new byte[NativeExecutor.BufferSize]);
        Assert.Null(e.Fault);
        Assert.Equal(0x1234_5678UL, e.Regs[Gpr.RAX]);
    }

    [Fact]
    public void DivideByZeroFromMemoryRaisesDivideErrorWithNothingChanged()
    {
        using var emu = NewCpu();
        var regs = new ulong[16];
        regs[Gpr.RBX] = Buf;
        regs[Gpr.RAX] = 1234;
        regs[Gpr.RDX] = 5;
        var e = emu.Run(Convert.FromHexString("48F733"), regs, RFlags.OF, new byte[NativeExecutor.BufferSize]); // div qword [rbx]
        Assert.Equal(Vectors.DE, e.Fault?.Vector);
        Assert.Equal(1234UL, e.Regs[Gpr.RAX]);
        Assert.Equal(5UL, e.Regs[Gpr.RDX]);
        Assert.Equal(RFlags.OF, e.Flags & RFlags.Arith);
    }

    [Fact]
    public void ShiftOfMemoryByAMaskedZeroCountNeitherWritesNorChangesFlags()
    {
        // shl dword [rbx], cl with CL = 32 (masked to 0), on MMIO so that any write would be seen.
        using var emu = NewCpu();
        var regs = new ulong[16];
        regs[Gpr.RBX] = Mmio;
        regs[Gpr.RCX] = 32;
        var e = emu.Run(Convert.FromHexString("D323"), regs, RFlags.CF | RFlags.SF, default);
        Assert.Null(e.Fault);
        Assert.Empty(emu.Platform.MmioWrites);
        Assert.Equal(RFlags.CF | RFlags.SF, e.Flags & RFlags.Arith);
        // With CL = 33 (masked to 1) it is written.
        regs[Gpr.RCX] = 33;
        emu.Run(Convert.FromHexString("D323"), regs, 0, default);
        Assert.Equal([(Mmio, 4, 0xFFFF_FFFEUL)], emu.Platform.MmioWrites);
    }
}
