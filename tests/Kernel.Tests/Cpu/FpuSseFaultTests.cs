using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.Differential;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// The architectural faults of the x87/MMX/SSE instructions that the host cannot show without killing the
/// test process: CR0.EM/TS/MP and CR4.OSFXSR rules (SDM Vol. 3A, Table 2-2), alignment and reserved-bit
/// #GP, pending x87 exceptions.
/// </summary>
public class FpuSseFaultTests
{
    private static byte[] Asm(Action<Assembler> emit)
    {
        var a = new Assembler(64);
        emit(a);
        var w = new Writer();
        a.Assemble(w, NativeExecutor.TestAddr);
        return w.Bytes.ToArray();
    }

    private sealed class Writer : CodeWriter
    {
        public readonly List<byte> Bytes = new();
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    private static (EmulatedExecutor Emu, CpuFault? Fault) Run(Action<Assembler> emit, ulong cr0Set = 0, ulong cr0Clear = 0,
        bool osfxsr = true, ulong rbx = NativeExecutor.BufferAddr, Action<SoftwareCpu>? setup = null)
    {
        var emu = new EmulatedExecutor();
        var cpu = emu.Cpu;
        if (osfxsr) cpu.Cr4 |= Cr4.OSFXSR | Cr4.OSXMMEXCPT;
        cpu.Cr0 = (cpu.Cr0 | cr0Set) & ~cr0Clear;
        setup?.Invoke(cpu);
        var regs = new ulong[16];
        regs[Gpr.RBX] = rbx;
        var r = emu.Run(Asm(emit), regs, 0, new byte[NativeExecutor.BufferSize]);
        return (emu, r.Fault);
    }

    private static void AssertVector(int vector, CpuFault? f) =>
        Assert.True(f != null && f.Vector == vector, $"expected {CpuFault.Name(vector)}, got {f?.Message ?? "no fault"}");

    [Fact]
    public void SseNeedsOsfxsrAndNoEmThenFaultsNmWhenTs()
    {
        AssertVector(Vectors.UD, Run(a => a.paddb(xmm0, xmm1), osfxsr: false).Fault);
        AssertVector(Vectors.UD, Run(a => a.paddb(xmm0, xmm1), cr0Set: Cr0.EM).Fault);
        AssertVector(Vectors.UD, Run(a => a.paddb(xmm0, xmm1), cr0Set: Cr0.EM | Cr0.TS).Fault);
        AssertVector(Vectors.NM, Run(a => a.paddb(xmm0, xmm1), cr0Set: Cr0.TS).Fault);
        Assert.Null(Run(a => a.paddb(xmm0, xmm1)).Fault);
    }

    [Fact]
    public void MmxNeedsNoEmFaultsNmWhenTsAndEntersMmxMode()
    {
        AssertVector(Vectors.UD, Run(a => a.paddb(mm0, mm1), cr0Set: Cr0.EM).Fault);
        AssertVector(Vectors.NM, Run(a => a.paddb(mm0, mm1), cr0Set: Cr0.TS).Fault);
        // MMX does not depend on CR4.OSFXSR.
        var (emu, f) = Run(a => a.paddb(mm0, mm1), osfxsr: false, setup: c => { c.FpuInit(); c.FpuTop = 5; c.FpuMant[0] = 0x0102; c.FpuMant[1] = 0x0101; });
        Assert.Null(f);
        Assert.Equal(0x0203UL, emu.Cpu.FpuMant[0]);
        Assert.Equal((ushort)0xFFFF, emu.Cpu.FpuExp[0]);
        Assert.Equal(0, emu.Cpu.FpuTop);
        Assert.Equal((byte)0xFF, emu.Cpu.FpuTags);
    }

    [Fact]
    public void X87FaultsNmWhenEmOrTs()
    {
        AssertVector(Vectors.NM, Run(a => a.fninit(), cr0Set: Cr0.TS).Fault);
        AssertVector(Vectors.NM, Run(a => a.fninit(), cr0Set: Cr0.EM).Fault);
        AssertVector(Vectors.NM, Run(a => a.fxsave(__[rbx]), cr0Set: Cr0.TS).Fault);
        var (emu, f) = Run(a => a.fninit());
        Assert.Null(f);
        Assert.Equal((ushort)0x37F, emu.Cpu.Fcw);
        Assert.Equal((byte)0, emu.Cpu.FpuTags);
    }

    [Fact]
    public void FwaitFaultsNmOnlyWithMpAndTsAndReportsPendingExceptionAsMf()
    {
        Assert.Null(Run(a => a.wait(), cr0Set: Cr0.TS, cr0Clear: Cr0.MP).Fault);
        AssertVector(Vectors.NM, Run(a => a.wait(), cr0Set: Cr0.TS | Cr0.MP).Fault);
        // An unmasked invalid-operation flag with ES set: #MF before the next waiting instruction (CR0.NE=1).
        void Pending(SoftwareCpu c) { c.FpuInit(); c.Fcw = 0x37E; c.Fsw = FswBits.IE | FswBits.ES | FswBits.B; }
        AssertVector(Vectors.MF, Run(a => a.wait(), setup: Pending).Fault);
        AssertVector(Vectors.MF, Run(a => a.fldcw(__word_ptr[rbx]), setup: Pending).Fault);
        AssertVector(Vectors.MF, Run(a => a.paddb(mm0, mm1), setup: Pending).Fault);
        // Non-waiting forms proceed; FNCLEX clears the pending state.
        var (emu, f) = Run(a => { a.fnclex(); a.wait(); }, setup: Pending);
        Assert.Null(f);
        Assert.Equal(0, emu.Cpu.Fsw & 0xFF);
    }

    [Fact]
    public void FldcwUnmaskingAPendingFlagSetsEsAndB()
    {
        var (emu, f) = Run(a => { a.mov(__word_ptr[rbx], 0x37E); a.fldcw(__word_ptr[rbx]); },
            setup: c => { c.FpuInit(); c.Fsw = FswBits.IE; });
        Assert.Null(f);
        Assert.Equal(FswBits.IE | FswBits.ES | FswBits.B, emu.Cpu.Fsw);
    }

    [Fact]
    public void FxsaveAndFxrstorNeed16ByteAlignment()
    {
        AssertVector(Vectors.GP, Run(a => a.fxsave(__[rbx]), rbx: NativeExecutor.BufferAddr + 8).Fault);
        AssertVector(Vectors.GP, Run(a => a.fxrstor64(__[rbx]), rbx: NativeExecutor.BufferAddr + 4).Fault);
    }

    [Fact]
    public void FxrstorAndLdmxcsrRejectReservedMxcsrBitsWithoutChangingState()
    {
        var (emu, f) = Run(a =>
        {
            a.fxsave64(__[rbx]);
            a.mov(__dword_ptr[rbx + 24], 0x11F80); // bit 16 is reserved (MXCSR_MASK 0xFFFF)
            a.mov(__word_ptr[rbx], 0x27F);
            a.fxrstor64(__[rbx]);
        }, setup: c => c.FpuInit());
        AssertVector(Vectors.GP, f);
        Assert.Equal((ushort)0x37F, emu.Cpu.Fcw);
        Assert.Equal(MxcsrBits.Default, emu.Cpu.Mxcsr);
        AssertVector(Vectors.GP, Run(a => { a.mov(__dword_ptr[rbx], 0x10000); a.ldmxcsr(__dword_ptr[rbx]); }).Fault);
        var (ok, f2) = Run(a => { a.mov(__dword_ptr[rbx], 0xFFFF); a.ldmxcsr(__dword_ptr[rbx]); });
        Assert.Null(f2);
        Assert.Equal(0xFFFFu, ok.Cpu.Mxcsr);
    }

    [Fact]
    public void FxsaveRoundTripsTheState()
    {
        var (emu, f) = Run(a =>
        {
            a.fxsave64(__[rbx]);
            a.fninit();
            a.pxor(xmm3, xmm3);
            a.pxor(xmm12, xmm12);
            a.fxrstor64(__[rbx]);
        }, setup: c =>
        {
            c.Fcw = 0x27F; c.Fsw = 0x3800 | FswBits.C1; c.FpuTags = 0x81; c.Mxcsr = 0x9FC0;
            c.FpuMant[7] = 0x8000_0000_0000_0001; c.FpuExp[7] = 0x3FFF;
            c.Xmm[6] = 0x1122; c.Xmm[7] = 0x3344; c.Xmm[24] = 0x5566; c.Xmm[25] = 0x7788;
        });
        Assert.Null(f);
        var c = emu.Cpu;
        Assert.Equal((ushort)0x27F, c.Fcw);
        Assert.Equal((ushort)(0x3800 | FswBits.C1), c.Fsw);
        Assert.Equal((byte)0x81, c.FpuTags);
        Assert.Equal(0x9FC0u, c.Mxcsr);
        Assert.Equal(0x8000_0000_0000_0001UL, c.FpuMant[7]);
        Assert.Equal((ushort)0x3FFF, c.FpuExp[7]);
        Assert.Equal(0x1122UL, c.Xmm[6]);
        Assert.Equal(0x7788UL, c.Xmm[25]);
        // ST(0) (physical R7, TOP = 7) is the first register in the image.
        Assert.Equal(0x8000_0000_0000_0001UL, c.ReadLinear(NativeExecutor.BufferAddr + 32, 8));
    }

    [Fact]
    public void AlignedSseMemoryOperandsFaultGpWhenMisaligned()
    {
        AssertVector(Vectors.GP, Run(a => a.movaps(xmm0, __[rbx]), rbx: NativeExecutor.BufferAddr + 4).Fault);
        AssertVector(Vectors.GP, Run(a => a.paddb(xmm0, __[rbx]), rbx: NativeExecutor.BufferAddr + 8).Fault);
        AssertVector(Vectors.GP, Run(a => a.movdqa(__[rbx], xmm1), rbx: NativeExecutor.BufferAddr + 1).Fault);
        Assert.Null(Run(a => a.movups(xmm0, __[rbx]), rbx: NativeExecutor.BufferAddr + 4).Fault);
        Assert.Null(Run(a => a.movq(xmm0, __[rbx]), rbx: NativeExecutor.BufferAddr + 4).Fault);
        Assert.Null(Run(a => a.paddb(mm0, __[rbx]), rbx: NativeExecutor.BufferAddr + 3).Fault);
    }

    [Fact]
    public void LaterExtensionsStayUndefined()
    {
        // SSE4.1's PEXTRW r/m16 form, SSSE3's PSHUFB and SSE3's FISTTP are not advertised by CPUID.
        AssertVector(Vectors.UD, Run(a => a.pextrw(__word_ptr[rbx], xmm0, 1)).Fault);
        AssertVector(Vectors.UD, Run(a => a.pshufb(xmm0, xmm1)).Fault);
        AssertVector(Vectors.UD, Run(a => a.fisttp(__dword_ptr[rbx])).Fault);
    }

    [Fact]
    public void UnmaskedSimdExceptionRaisesXmOrUdAndLeavesTheDestination()
    {
        // 1.0 / 0.0 with ZM clear: #XM with CR4.OSXMMEXCPT, #UD without; ZE recorded, XMM0 unchanged.
        void Setup(SoftwareCpu c) { c.Mxcsr = MxcsrBits.Default & ~(MxcsrBits.ZE << MxcsrBits.MaskShift); c.Xmm[0] = 0x3F80_0000; c.Xmm[2] = 0; }
        var (emu, f) = Run(a => a.divss(xmm0, xmm1), setup: Setup);
        AssertVector(Vectors.XM, f);
        Assert.Equal(0x3F80_0000UL, emu.Cpu.Xmm[0]);
        Assert.NotEqual(0u, emu.Cpu.Mxcsr & MxcsrBits.ZE);
        var (_, f2) = Run(a => a.divss(xmm0, xmm1), setup: c => { Setup(c); c.Cr4 &= ~Cr4.OSXMMEXCPT; });
        AssertVector(Vectors.UD, f2);
        // Masked: the result is +inf and only the flag is set.
        var (ok, f3) = Run(a => a.divss(xmm0, xmm1), setup: c => { Setup(c); c.Mxcsr = MxcsrBits.Default; });
        Assert.Null(f3);
        Assert.Equal(0x7F80_0000UL, ok.Cpu.Xmm[0]);
        Assert.Equal(MxcsrBits.Default | MxcsrBits.ZE, ok.Cpu.Mxcsr);
    }

    [Fact]
    public void UnmaskedX87ExceptionIsPendingUntilTheNextWaitingInstruction()
    {
        // FDIV by zero with ZM clear: ST(0) unchanged, ZE + ES + B set; the following FWAIT raises #MF.
        var (emu, f) = Run(a => { a.fld1(); a.fldz(); a.fdivp(st1, st0); }, setup: c => { c.FpuInit(); c.Fcw = 0x37B; });
        Assert.Null(f);
        Assert.Equal(FswBits.ZE | FswBits.ES | FswBits.B, emu.Cpu.Fsw & 0x80FF);
        var (_, f2) = Run(a => { a.fld1(); a.fldz(); a.fdivp(st1, st0); a.wait(); }, setup: c => { c.FpuInit(); c.Fcw = 0x37B; });
        AssertVector(Vectors.MF, f2);
    }
}
