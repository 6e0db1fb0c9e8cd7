using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>CBW/CWD families, XLAT, LEA, MOVNTI and the NOP forms (SDM Vol. 2).</summary>
public class DataMoveTests
{
    [Theory]
    [InlineData(0x1234_5678_9ABC_DE80UL, 0x1234_5678_9ABC_FF80UL, 0x0000_0000_FFFF_DE80UL, 0xFFFF_FFFF_9ABC_DE80UL)]
    [InlineData(0xFFFF_FFFF_0000_7F7FUL, 0xFFFF_FFFF_0000_007FUL, 0x0000_0000_0000_7F7FUL, 0x0000_0000_0000_7F7FUL)]
    public void AccumulatorSignExtensions(ulong rax, ulong cbw, ulong cwde, ulong cdqe)
    {
        foreach (var (prog, expected) in new (Action<Iced.Intel.Assembler>, ulong)[] { (a => a.cbw(), cbw), (a => a.cwde(), cwde), (a => a.cdqe(), cdqe) })
        {
            var h = new CpuHarness(StartMode.Long64);
            h[Gpr.RAX] = rax;
            h.Load(prog);
            h.Step();
            Assert.Equal(expected, h[Gpr.RAX]);
        }
    }

    [Theory]
    [InlineData(0x0000_0000_0000_8000UL, 0xAAAA_AAAA_AAAA_FFFFUL, 0x0000_0000_0000_0000UL, 0x0000_0000_0000_0000UL)]
    [InlineData(0x0000_0000_8000_0000UL, 0xAAAA_AAAA_AAAA_0000UL, 0x0000_0000_FFFF_FFFFUL, 0x0000_0000_0000_0000UL)]
    [InlineData(0x8000_0000_0000_0000UL, 0xAAAA_AAAA_AAAA_0000UL, 0x0000_0000_0000_0000UL, 0xFFFF_FFFF_FFFF_FFFFUL)]
    public void AccumulatorSignIntoDx(ulong rax, ulong cwd, ulong cdq, ulong cqo)
    {
        foreach (var (prog, expected) in new (Action<Iced.Intel.Assembler>, ulong)[] { (a => a.cwd(), cwd), (a => a.cdq(), cdq), (a => a.cqo(), cqo) })
        {
            var h = new CpuHarness(StartMode.Long64);
            h[Gpr.RAX] = rax;
            h[Gpr.RDX] = 0xAAAA_AAAA_AAAA_AAAA;
            h.Load(prog);
            h.Step();
            Assert.Equal(expected, h[Gpr.RDX]);
            Assert.Equal(rax, h[Gpr.RAX]);
        }
    }

    [Fact]
    public void XlatUsesBxPlusUnsignedAlInEachAddressSize()
    {
        // 64-bit: RBX + AL (AL = 0xF0 is unsigned).
        var h = new CpuHarness(StartMode.Long64);
        h.Memory.WriteByte(0x1_2000 + 0xF0, 0x5A);
        h[Gpr.RBX] = 0x1_2000;
        h[Gpr.RAX] = 0xF0;
        h.Load(a => a.xlatb());
        h.Step();
        Assert.Equal(0x5AUL, h[Gpr.RAX]);

        // 16-bit real mode: DS:(BX + AL) wraps at 64 KiB.
        var r = new CpuHarness(StartMode.Real);
        r.Cpu.Segs[Seg.DS] = SegmentRegister.RealMode(0x2000);
        r.Memory.WriteByte(0x2_0000 + 0x0010, 0x77);
        r[Gpr.RBX] = 0xFFFF_FF20;
        r[Gpr.RAX] = 0xF0;
        r.Load(a => a.xlatb());
        r.Step();
        Assert.Equal(0x77UL, r[Gpr.RAX] & 0xFF);
    }

    [Fact]
    public void LeaTruncatesToAddressThenOperandSize()
    {
        var h = new CpuHarness(StartMode.Long64);
        h[Gpr.RBX] = 0xFFFF_FFFF_FFFF_FFF0;
        h[Gpr.RCX] = 0x10;
        h[Gpr.RDX] = ulong.MaxValue;
        h.Load(a =>
        {
            a.lea(rax, __[rbx + rcx * 4 + 8]);    // 64-bit: 0x38 after wrap
            a.lea(esi, __[rbx + rcx * 2]);        // 32-bit result of a 64-bit address
            a.lea(di, __[rbx + 0x20]);            // 16-bit destination keeps the upper bits
            a.db(0x67, 0x48, 0x8D, 0x14, 0x8B);   // lea rdx, [ebx+ecx*4]: 32-bit address zero-extended
        });
        h[Gpr.RDI] = 0x1111_2222_3333_4444;
        h.Step(4);
        Assert.Equal(0x38UL, h[Gpr.RAX]);
        Assert.Equal(0x10UL, h[Gpr.RSI]);
        Assert.Equal(0x1111_2222_3333_0010UL, h[Gpr.RDI]);
        Assert.Equal(0x30UL, h[Gpr.RDX]);
    }

    [Fact]
    public void LeaWithRipRelativeAddressing()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Load(a =>
        {
            var target = a.CreateLabel();
            a.lea(rax, __[target]);
            a.nop();
            a.Label(ref target);
            a.nop();
        });
        h.Step();
        Assert.Equal(CpuHarness.CodeAddress + 8, h[Gpr.RAX]); // 7-byte LEA, 1-byte NOP
    }

    [Fact]
    public void LeaWithARegisterSourceIsUndefined()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.LoadBytes(0x48, 0x8D, 0xC1); // lea rax, rcx (mod = 11)
        h.ExpectFault(Vectors.UD);
    }

    [Fact]
    public void MovntiStoresLikeMov()
    {
        var h = new CpuHarness(StartMode.Long64);
        h[Gpr.RAX] = 0x0102_0304_0506_0708;
        h.Load(a => { a.mov(ebx, 0x20000); a.movnti(__qword_ptr[rbx], rax); a.movnti(__dword_ptr[rbx + 8], eax); });
        h.Step(3);
        Assert.Equal(0x0102_0304_0506_0708UL, h.Memory.ReadUInt64(0x20000));
        Assert.Equal(0x0506_0708u, h.Memory.ReadUInt32(0x20008));
    }

    /// <summary>
    /// The recommended multi-byte NOPs (SDM Vol. 2B, Table 4-12), the reserved-NOP opcodes, PAUSE and
    /// ENDBR64: none touches memory, so an unmapped or non-canonical operand must not fault.
    /// </summary>
    [Fact]
    public void NopFormsNeverAccessTheirOperands()
    {
        var h = new CpuHarness(StartMode.Long64);
        h[Gpr.RAX] = 0x8000_0000_0000_0000; // non-canonical
        byte[] code =
        [
            0x90,
            0x66, 0x90,
            0x0F, 0x1F, 0x00,
            0x0F, 0x1F, 0x40, 0x00,
            0x0F, 0x1F, 0x44, 0x00, 0x00,
            0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00,
            0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00,
            0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x0F, 0x19, 0x00,             // reserved NOP
            0x0F, 0x1E, 0x00,             // reserved NOP
            0xF3, 0x90,                   // pause
            0xF3, 0x0F, 0x1E, 0xFA,       // endbr64
            0xF3, 0x0F, 0x1E, 0xFB,       // endbr32
        ];
        h.LoadBytes(code);
        h.Step(14);
        Assert.Equal(CpuHarness.CodeAddress + (ulong)code.Length, h.Cpu.Rip);
        Assert.Empty(h.Cpu.Unimplemented);
    }
}
