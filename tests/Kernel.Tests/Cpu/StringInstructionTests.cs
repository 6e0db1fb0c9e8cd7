using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Cpu.Instructions;
using Actorvisor.Kernel.Tests.Differential;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// String-instruction behaviour the host cannot show us from user mode: INS/OUTS through the platform,
/// I/O permission, segment bases and overrides, 16-bit address wrap, yielding long REP loops to the run
/// loop, faults in the middle of a REP (SDM Vol. 2B, REP: "the registers ... are updated to reflect the
/// progress up to the faulting iteration"), and REP MOVS writing over decoded code.
/// </summary>
public class StringInstructionTests
{
    private const ulong Buf = NativeExecutor.BufferAddr;

    private static byte[] Encode(Instruction i, int bitness = 64) => Forms.Encode(i, NativeExecutor.TestAddr, bitness);

    /// <summary>A platform that counts port reads and serves a sequence of values.</summary>
    private sealed class CountingPlatform : ICpuPlatform
    {
        public int Reads;
        public readonly List<(ushort Port, int Size, uint Value)> Writes = new();
        public uint PortRead(int vcpuId, ushort port, int size) => (uint)(0x11223344 + 0x01010101 * Reads++) & (uint)((1UL << (size * 8)) - 1);
        public void PortWrite(int vcpuId, ushort port, int size, uint value) => Writes.Add((port, size, value));
        public ulong MmioRead(int vcpuId, ulong address, int size) => 0;
        public void MmioWrite(int vcpuId, ulong address, int size, ulong value) { }
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(4, false)]
    public void RepInsStoresPortDataAndAdvancesDi(int size, bool down)
    {
        using var emu = new EmulatedExecutor();
        var platform = new CountingPlatform();
        emu.Cpu.Platform = platform;
        var ins = size switch { 1 => Instruction.CreateRepInsb(64), 2 => Instruction.CreateRepInsw(64), _ => Instruction.CreateRepInsd(64) };
        var regs = new ulong[16];
        regs[Gpr.RDX] = 0xFFFF_0000_0000_0060; // only DX is the port
        regs[Gpr.RCX] = 5;
        regs[Gpr.RDI] = Buf + 0x100;
        var buffer = new byte[NativeExecutor.BufferSize];
        var e = emu.Run(Encode(ins), regs, down ? RFlags.DF : 0, buffer);
        Assert.Null(e.Fault);
        Assert.Equal(5, platform.Reads);
        Assert.Equal(0UL, e.Regs[Gpr.RCX]);
        var step = down ? -size : size;
        Assert.Equal((ulong)((long)(Buf + 0x100) + 5 * step), e.Regs[Gpr.RDI]);
        for (var k = 0; k < 5; k++)
        {
            var at = 0x100 + k * step;
            var expected = (0x11223344UL + 0x01010101UL * (ulong)k) & ((1UL << (size * 8)) - 1);
            var got = 0UL;
            for (var b = 0; b < size; b++) got |= (ulong)buffer[at + b] << (8 * b);
            Assert.Equal(expected, got);
        }
    }

    [Fact]
    public void RepOutsReadsFromTheOverrideSegment()
    {
        // 32-bit protected mode: FS has its own base; OUTS FS:[ESI] reads there, in order.
        using var emu = new EmulatedExecutor(StartMode.Protected32);
        var platform = new CountingPlatform();
        emu.Cpu.Platform = platform;
        var fs = emu.Cpu.Segs[Seg.DS];
        fs.Base = 0x0100_0000;
        emu.Cpu.Segs[Seg.FS] = fs;
        emu.Memory.Write(0x0100_0000 + 0x40, new byte[] { 0x10, 0x20, 0x30, 0x40, 0x50, 0x60 });
        emu.Memory.Write(0x40, new byte[] { 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE });
        var regs = new ulong[16];
        regs[Gpr.RDX] = 0x3F8;
        regs[Gpr.RCX] = 3;
        regs[Gpr.RSI] = 0x40;
        var e = emu.Run(Encode(Instruction.CreateOutsw(32, Register.FS, RepPrefixKind.Repe), 32), regs, 0, default);
        Assert.Null(e.Fault);
        Assert.Equal(new (ushort, int, uint)[] { (0x3F8, 2, 0x2010), (0x3F8, 2, 0x4030), (0x3F8, 2, 0x6050) }, platform.Writes);
        Assert.Equal(0x46UL, e.Regs[Gpr.RSI]);
    }

    [Fact]
    public void MovsUsesEsForTheDestinationAndTheOverrideForTheSource()
    {
        using var emu = new EmulatedExecutor(StartMode.Protected32);
        var es = emu.Cpu.Segs[Seg.DS];
        es.Base = 0x0180_0000;
        emu.Cpu.Segs[Seg.ES] = es;
        var gs = emu.Cpu.Segs[Seg.DS];
        gs.Base = 0x0140_0000;
        emu.Cpu.Segs[Seg.GS] = gs;
        emu.Memory.Write(0x0140_0010, new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 });
        var regs = new ulong[16];
        regs[Gpr.RCX] = 2;
        regs[Gpr.RSI] = 0x10;
        regs[Gpr.RDI] = 0x20;
        var e = emu.Run(Encode(Instruction.CreateMovsd(32, Register.GS, RepPrefixKind.Repe), 32), regs, 0, default);
        Assert.Null(e.Fault);
        var dest = new byte[8];
        emu.Memory.Read(0x0180_0020, dest);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, dest);
        Assert.Equal(0x18UL, e.Regs[Gpr.RSI]);
        Assert.Equal(0x28UL, e.Regs[Gpr.RDI]);
    }

    [Fact]
    public void SixteenBitAddressingWrapsSiAndKeepsTheUpperBits()
    {
        // 32-bit code with an address-size prefix: SI/DI/CX are 16-bit; SI wraps from FFFF to 0000.
        using var emu = new EmulatedExecutor(StartMode.Protected32);
        emu.Memory.WriteByte(0xFFFF, 0xAA);
        emu.Memory.WriteByte(0x0000, 0xBB);
        var regs = new ulong[16];
        regs[Gpr.RSI] = 0x1234_FFFF;
        regs[Gpr.RDI] = 0x5678_2000;
        regs[Gpr.RCX] = 0x9ABC_0002;
        var e = emu.Run(Encode(Instruction.CreateMovsb(16, Register.None, RepPrefixKind.Repe), 32), regs, 0, default);
        Assert.Null(e.Fault);
        Assert.Equal(0xAA, emu.Memory.ReadByte(0x2000));
        Assert.Equal(0xBB, emu.Memory.ReadByte(0x2001));
        Assert.Equal(0x1234_0001UL, e.Regs[Gpr.RSI]);
        Assert.Equal(0x5678_2002UL, e.Regs[Gpr.RDI]);
        Assert.Equal(0x9ABC_0000UL, e.Regs[Gpr.RCX]);
    }

    [Fact]
    public void LongRepYieldsToTheRunLoopAfterAChunk()
    {
        using var emu = new EmulatedExecutor();
        var code = Encode(Instruction.CreateRepStosb(64));
        emu.Memory.Write(NativeExecutor.TestAddr, code);
        emu.Memory.WriteByte(NativeExecutor.TestAddr + (ulong)code.Length, 0xF4); // HLT
        var cpu = emu.Cpu;
        cpu.Rip = NativeExecutor.TestAddr;
        cpu.Gprs[Gpr.RCX] = 10_000;
        cpu.Gprs[Gpr.RDI] = Buf;
        cpu.Gprs[Gpr.RAX] = 0x5A;
        // One instruction's worth of budget runs one chunk and comes back with RIP still on the REP.
        Assert.Equal(CpuExitReason.InstructionLimit, cpu.Run(1));
        Assert.Equal(NativeExecutor.TestAddr, cpu.Rip);
        Assert.Equal((ulong)(10_000 - Strings.ChunkIterations), cpu.Gprs[Gpr.RCX]);
        Assert.Equal(Buf + Strings.ChunkIterations, cpu.Gprs[Gpr.RDI]);
        Assert.Equal(CpuExitReason.Halted, cpu.Run(100));
        Assert.Equal(0UL, cpu.Gprs[Gpr.RCX]);
        Assert.Equal(Buf + 10_000, cpu.Gprs[Gpr.RDI]);
        var filled = new byte[10_001];
        emu.Memory.Read(Buf, filled);
        Assert.All(filled[..10_000], b => Assert.Equal(0x5A, b));
        Assert.NotEqual(0x5A, filled[10_000]);
    }

    /// <summary>Makes the 2 MiB page at <paramref name="address"/> not present in the identity map.</summary>
    private static void UnmapLargePage(EmulatedExecutor emu, ulong address)
    {
        emu.Memory.WriteUInt64(CpuSetup.PdAddress + (address >> 21) * 8, 0);
        emu.Cpu.FlushTlb(includeGlobal: true);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PageFaultMidRepLeavesTheRegistersAtTheFaultingIteration(bool movs)
    {
        using var emu = new EmulatedExecutor();
        const ulong hole = 0x0300_0000;
        UnmapLargePage(emu, hole);
        var regs = new ulong[16];
        regs[Gpr.RCX] = 100;
        regs[Gpr.RAX] = 0x77;
        regs[Gpr.RSI] = Buf;
        regs[Gpr.RDI] = hole - 10;
        var ins = movs ? Instruction.CreateRepMovsw(64) : Instruction.CreateRepStosw(64);
        var e = emu.Run(Encode(ins), regs, 0, new byte[NativeExecutor.BufferSize]);
        Assert.Equal(Vectors.PF, e.Fault?.Vector);
        Assert.Equal(hole, e.Fault!.Address);
        Assert.Equal(95UL, e.Regs[Gpr.RCX]);
        Assert.Equal(hole, e.Regs[Gpr.RDI]);
        if (movs) Assert.Equal(Buf + 10, e.Regs[Gpr.RSI]);
        Assert.Equal(NativeExecutor.TestAddr, emu.Cpu.Rip);
        // The five elements before the fault were stored.
        if (!movs) Assert.Equal(0x0077_0077_0077_0077UL, emu.Memory.ReadUInt64(hole - 8));
    }

    [Fact]
    public void SegmentLimitFaultMidRepStopsAtTheElementThatCrossesIt()
    {
        // 32-bit mode, ES limit 0x2FFF: STOSD at 0x2FF0.. stores four dwords, the fifth (0x3000) faults #GP.
        using var emu = new EmulatedExecutor(StartMode.Protected32);
        emu.Cpu.Segs[Seg.ES].Limit = 0x2FFF;
        var regs = new ulong[16];
        regs[Gpr.RCX] = 64;
        regs[Gpr.RAX] = 0xA5A5_A5A5;
        regs[Gpr.RDI] = 0x2FF0;
        var e = emu.Run(Encode(Instruction.CreateRepStosd(32), 32), regs, 0, default);
        Assert.Equal(Vectors.GP, e.Fault?.Vector);
        Assert.Equal(60UL, e.Regs[Gpr.RCX]);
        Assert.Equal(0x3000UL, e.Regs[Gpr.RDI]);
        Assert.Equal(0xA5A5_A5A5U, emu.Memory.ReadUInt32(0x2FFC));
        Assert.NotEqual(0xA5A5_A5A5U, emu.Memory.ReadUInt32(0x3000));
    }

    [Fact]
    public void InsIntoAFaultingDestinationDoesNotConsumePortData()
    {
        using var emu = new EmulatedExecutor();
        var platform = new CountingPlatform();
        emu.Cpu.Platform = platform;
        const ulong hole = 0x0300_0000;
        UnmapLargePage(emu, hole);
        var regs = new ulong[16];
        regs[Gpr.RDX] = 0x60;
        regs[Gpr.RCX] = 4;
        regs[Gpr.RDI] = hole - 2;
        var e = emu.Run(Encode(Instruction.CreateRepInsb(64)), regs, 0, default);
        Assert.Equal(Vectors.PF, e.Fault?.Vector);
        Assert.Equal(2, platform.Reads);
        Assert.Equal(2UL, e.Regs[Gpr.RCX]);
    }

    [Fact]
    public void InsAndOutsNeedIoPermissionAtCpl3()
    {
        using var emu = new EmulatedExecutor(StartMode.Protected32);
        var platform = new CountingPlatform();
        emu.Cpu.Platform = platform;
        // CPL 3 with IOPL 0 and no usable TSS bitmap: every port is denied.
        ref var cs = ref emu.Cpu.Segs[Seg.CS];
        cs.Selector |= 3;
        cs.Attributes |= 3 << 5;
        emu.Cpu.UpdateMode();
        Assert.Equal(3, emu.Cpu.Cpl);
        var regs = new ulong[16];
        regs[Gpr.RDX] = 0x60;
        regs[Gpr.RCX] = 3;
        regs[Gpr.RDI] = 0x2000;
        regs[Gpr.RSI] = 0x2000;
        var e = emu.Run(Encode(Instruction.CreateRepInsb(32), 32), regs, 0, default);
        Assert.Equal(Vectors.GP, e.Fault?.Vector);
        Assert.Equal(3UL, e.Regs[Gpr.RCX]);
        e = emu.Run(Encode(Instruction.CreateRepOutsb(32), 32), regs, 0, default);
        Assert.Equal(Vectors.GP, e.Fault?.Vector);
        Assert.Equal(0, platform.Reads);
        Assert.Empty(platform.Writes);
    }

    [Fact]
    public void RepMovsOverDecodedCodeIsSeenByTheNextInstruction()
    {
        // Copies "mov eax, 2" over "mov eax, 1" a few instructions ahead in the same decoded block.
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            var patch = a.CreateLabel();
            var target = a.CreateLabel();
            a.lea(rsi, __[patch]);
            a.lea(rdi, __[target]);
            a.mov(ecx, 5);
            a.rep.movsb();
            a.Label(ref target);
            a.mov(eax, 1);
            a.hlt();
            a.Label(ref patch);
            a.mov(eax, 2);
        });
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal(2UL, r.Rax);
    }

    [Fact]
    public void RepeCmpsStopsAtTheFirstDifference()
    {
        using var emu = new EmulatedExecutor();
        var buffer = new byte[NativeExecutor.BufferSize];
        "hello, world"u8.CopyTo(buffer.AsSpan(0x10));
        "hello, there"u8.CopyTo(buffer.AsSpan(0x40));
        var regs = new ulong[16];
        regs[Gpr.RCX] = 12;
        regs[Gpr.RSI] = Buf + 0x10;
        regs[Gpr.RDI] = Buf + 0x40;
        var e = emu.Run(Encode(Instruction.CreateCmpsb(64, Register.None, RepPrefixKind.Repe)), regs, 0, buffer);
        // Stops after comparing 'w' with 't' (the 8th pair): 4 left, pointers past it, ZF clear, 'w' > 't'.
        Assert.Equal(4UL, e.Regs[Gpr.RCX]);
        Assert.Equal(Buf + 0x18, e.Regs[Gpr.RSI]);
        Assert.Equal(0UL, e.Flags & RFlags.ZF);
        Assert.Equal(0UL, e.Flags & RFlags.CF);
    }
}
