using Iced.Intel;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// The SIMD runner: like the 64-bit runner, but the x87/MMX/SSE state is loaded from an FXSAVE image
/// before the instruction under test and saved to one after it (FXRSTOR64/FXSAVE64), with the host's own
/// state saved and restored around the whole call (MXCSR and the x87 control word are callee-saved in
/// the System V ABI, and the runtime's XMM registers are not ours to change).
/// </summary>
internal sealed unsafe partial class NativeExecutor
{
    private const ulong SimdCode64 = Base + 0x2000;
    private const ulong SimdEpilogue64 = Base + 0x2200;
    private const ulong HostFx = Base + 0x2400, InFx = Base + 0x2600, OutFx = Base + 0x2800;

    private bool _simdWritten;

    private void WriteSimdRunner()
    {
        var pro = new List<Instruction>
        {
            Instruction.Create(Code.Fxsave64_m512byte, Abs(HostFx)),
            Instruction.Create(Code.Fxrstor64_m512byte, Abs(InFx)),
        };
        Prologue(pro);
        pro.Add(Instruction.CreateBranch(Code.Jmp_rel32_64, TestAddr));
        Emit(SimdCode64, pro);
        var epi = new List<Instruction>
        {
            Instruction.Create(Code.Fxsave64_m512byte, Abs(OutFx)),
            Instruction.Create(Code.Fxrstor64_m512byte, Abs(HostFx)),
        };
        Epilogue(epi, restoreRsp: false);
        Emit(SimdEpilogue64, epi);
        _simdWritten = true;
    }

    /// <summary>
    /// As <see cref="Run64"/>, with the x87/SSE state taken from <paramref name="fxIn"/> (a 512-byte FXSAVE64
    /// image; its exception masks must keep the instruction from trapping) and the state after the
    /// instruction returned in <paramref name="fxOut"/>.
    /// </summary>
    public Result RunSimd64(ReadOnlySpan<byte> instruction, ulong[] regs, ulong flags, Span<byte> buffer,
        ReadOnlySpan<byte> fxIn, Span<byte> fxOut)
    {
        if (!_simdWritten) WriteSimdRunner();
        CheckSafe(instruction, regs, buffer);
        fxIn[..512].CopyTo(new Span<byte>((void*)InFx, 512));
        var r = Run(instruction, TestAddr, SimdEpilogue64, SimdCode64, regs, flags, buffer);
        new Span<byte>((void*)OutFx, 512).CopyTo(fxOut);
        return r;
    }
}
