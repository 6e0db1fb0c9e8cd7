using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// x87, MMX and SSE register state, the CR0/CR4 availability checks shared by their instructions, and the
/// FXSAVE image (SDM Vol. 1, 10.5.1). The x87 data registers are kept physically (R0..R7, TOP in FSW
/// bits 11-13) as a 64-bit significand plus a 16-bit sign/exponent, so MMi is the significand of Ri.
/// The tag word is kept abridged (one "not empty" bit per physical register), as FXSAVE stores it; the
/// full two-bit tags that FNSTENV/FNSAVE store are derived from the register contents.
/// </summary>
public sealed partial class SoftwareCpu
{
    /// <summary>XMM0-15 as low/high 64-bit halves.</summary>
    public readonly ulong[] Xmm = new ulong[32];
    public uint Mxcsr = MxcsrBits.Default;

    public ushort Fcw, Fsw, Fop, Fcs, Fds;
    /// <summary>Abridged tag word: bit i set when physical register Ri is not empty.</summary>
    public byte FpuTags;
    public ulong Fip, Fdp;
    /// <summary>Physical x87 registers R0..R7: 64-bit significand and sign/exponent.</summary>
    public readonly ulong[] FpuMant = new ulong[8];
    public readonly ushort[] FpuExp = new ushort[8];

    /// <summary>RESET state (SDM Vol. 3A, Table 10-1): FCW 0x40, all registers +0 and tagged valid.</summary>
    private void ResetFpu()
    {
        Array.Clear(Xmm);
        Mxcsr = MxcsrBits.Default;
        Fcw = 0x40;
        Fsw = Fop = Fcs = Fds = 0;
        Fip = Fdp = 0;
        FpuTags = 0xFF;
        Array.Clear(FpuMant);
        Array.Clear(FpuExp);
    }

    /// <summary>FNINIT: control word 0x37F, status and pointers cleared, every register empty.</summary>
    internal void FpuInit()
    {
        Fcw = 0x37F;
        Fsw = Fop = Fcs = Fds = 0;
        Fip = Fdp = 0;
        FpuTags = 0;
    }

    internal int FpuTop
    {
        get => (Fsw >> 11) & 7;
        set => Fsw = (ushort)((Fsw & ~0x3800) | ((value & 7) << 11));
    }

    // ---- availability checks (SDM Vol. 3A, 2.5 and Table 2-2; Vol. 1, 13.x) ----

    /// <summary>x87 instructions: #NM when CR0.EM or CR0.TS is set.</summary>
    internal void CheckX87Available()
    {
        if ((Cr0 & (Cpu.Cr0.EM | Cpu.Cr0.TS)) != 0) throw CpuFault.DeviceNotAvailable();
    }

    /// <summary>A waiting x87 instruction: availability, then any pending unmasked x87 exception.</summary>
    internal void CheckX87Waiting()
    {
        CheckX87Available();
        CheckPendingX87();
    }

    /// <summary>
    /// A pending unmasked x87 exception (FSW.ES) is reported as #MF before the next waiting instruction when
    /// CR0.NE is set. With NE clear the PC reports it through FERR#/IRQ 13, which this machine does not wire:
    /// the exception then stays pending in FSW and the instruction proceeds.
    /// </summary>
    internal void CheckPendingX87()
    {
        if ((Fsw & FswBits.ES) != 0 && (Cr0 & Cpu.Cr0.NE) != 0) throw CpuFault.Of(Vectors.MF);
    }

    /// <summary>SSE/SSE2 instructions: #UD when CR0.EM is set or CR4.OSFXSR clear, then #NM when CR0.TS is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckSseAvailable()
    {
        if ((Cr0 & Cpu.Cr0.EM) != 0 || (Cr4 & Cpu.Cr4.OSFXSR) == 0) throw CpuFault.InvalidOpcode();
        if ((Cr0 & Cpu.Cr0.TS) != 0) throw CpuFault.DeviceNotAvailable();
    }

    /// <summary>
    /// MMX instructions: #UD when CR0.EM, #NM when CR0.TS, #MF for a pending x87 exception; then the x87 unit
    /// enters MMX mode (TOP = 0, every register tagged valid).
    /// </summary>
    internal void EnterMmx()
    {
        if ((Cr0 & Cpu.Cr0.EM) != 0) throw CpuFault.InvalidOpcode();
        if ((Cr0 & Cpu.Cr0.TS) != 0) throw CpuFault.DeviceNotAvailable();
        CheckPendingX87();
        FpuTop = 0;
        FpuTags = 0xFF;
    }

    // ---- SIMD registers ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Vector128<byte> ReadXmm(int n) => Vector128.Create(Xmm[2 * n], Xmm[2 * n + 1]).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void WriteXmm(int n, Vector128<byte> v)
    {
        var q = v.AsUInt64();
        Xmm[2 * n] = q.GetElement(0);
        Xmm[2 * n + 1] = q.GetElement(1);
    }

    internal ulong ReadMm(int n) => FpuMant[n];

    /// <summary>An MMX register write also sets the aliased x87 register's exponent to all ones (SDM Vol. 1, 9.5.2).</summary>
    internal void WriteMm(int n, ulong v)
    {
        FpuMant[n] = v;
        FpuExp[n] = 0xFFFF;
    }

    /// <summary>Reads 16 bytes at a linear address (already segment-checked).</summary>
    internal Vector128<byte> ReadLinear128(ulong la) => Vector128.Create(ReadLinear(la, 8), ReadLinear(la + 8, 8)).AsByte();

    /// <summary>Writes 16 bytes; when they cross a page both pages are translated first, so a fault writes nothing.</summary>
    internal void WriteLinear128(ulong la, Vector128<byte> v)
    {
        ProbeWrite(la, 16);
        var q = v.AsUInt64();
        WriteLinear(la, 8, q.GetElement(0));
        WriteLinear(la + 8, 8, q.GetElement(1));
    }

    /// <summary>Translates the first and last byte of a multi-part write so a page fault comes before any part is written.</summary>
    internal void ProbeWrite(ulong la, int size)
    {
        if ((la & 0xFFF) + (ulong)size > 0x1000)
        {
            Translate(la, AccessKind.Write, UserAccess);
            Translate(la + (ulong)size - 1, AccessKind.Write, UserAccess);
        }
    }

    // ---- FXSAVE image ----

    /// <summary>
    /// Writes the 512-byte FXSAVE image (SDM Vol. 1, Table 10-2/10-3). <paramref name="rexW"/> selects the
    /// 64-bit FIP/FDP layout. XMM8-15 are stored only in 64-bit mode; bytes 416-511 are left as they were.
    /// </summary>
    public void FxSaveImage(Span<byte> img, bool rexW, bool is64)
    {
        W16(img, 0, Fcw);
        W16(img, 2, Fsw);
        img[4] = FpuTags;
        img[5] = 0;
        W16(img, 6, (ushort)(Fop & 0x7FF));
        if (rexW)
        {
            W64(img, 8, Fip);
            W64(img, 16, Fdp);
        }
        else
        {
            W32(img, 8, (uint)Fip);
            W16(img, 12, Fcs);
            W16(img, 14, 0);
            W32(img, 16, (uint)Fdp);
            W16(img, 20, Fds);
            W16(img, 22, 0);
        }
        W32(img, 24, Mxcsr);
        W32(img, 28, MxcsrBits.Mask);
        var top = FpuTop;
        for (var k = 0; k < 8; k++)
        {
            var p = (top + k) & 7;
            W64(img, 32 + 16 * k, FpuMant[p]);
            W16(img, 40 + 16 * k, FpuExp[p]);
            img.Slice(42 + 16 * k, 6).Clear();
        }
        var n = is64 ? 16 : 8;
        for (var k = 0; k < n; k++)
        {
            W64(img, 160 + 16 * k, Xmm[2 * k]);
            W64(img, 168 + 16 * k, Xmm[2 * k + 1]);
        }
    }

    /// <summary>Loads an FXSAVE image; #GP(0) for reserved MXCSR bits (checked before anything changes).</summary>
    public void FxRestoreImage(ReadOnlySpan<byte> img, bool rexW, bool is64)
    {
        var mxcsr = R32(img, 24);
        if ((mxcsr & ~MxcsrBits.Mask) != 0) throw CpuFault.General(0);
        Fcw = FcwBits.Load(R16(img, 0));
        Fsw = R16(img, 2);
        FpuTags = img[4];
        Fop = (ushort)(R16(img, 6) & 0x7FF);
        if (rexW)
        {
            Fip = R64(img, 8);
            Fdp = R64(img, 16);
            Fcs = Fds = 0;
        }
        else
        {
            Fip = R32(img, 8);
            Fcs = R16(img, 12);
            Fdp = R32(img, 16);
            Fds = R16(img, 20);
        }
        Mxcsr = mxcsr;
        var top = FpuTop;
        for (var k = 0; k < 8; k++)
        {
            var p = (top + k) & 7;
            FpuMant[p] = R64(img, 32 + 16 * k);
            FpuExp[p] = R16(img, 40 + 16 * k);
        }
        var n = is64 ? 16 : 8;
        for (var k = 0; k < n; k++)
        {
            Xmm[2 * k] = R64(img, 160 + 16 * k);
            Xmm[2 * k + 1] = R64(img, 168 + 16 * k);
        }
    }

    /// <summary>The full x87 tag word (two bits per physical register) that FNSTENV/FNSAVE store, from the contents.</summary>
    internal ushort FullTagWord()
    {
        var tw = 0;
        for (var p = 0; p < 8; p++)
        {
            int tag;
            if ((FpuTags & (1 << p)) == 0) tag = 3;
            else
            {
                var e = FpuExp[p] & 0x7FFF;
                var m = FpuMant[p];
                if (e == 0x7FFF) tag = 2;
                else if (e == 0) tag = m == 0 ? 1 : 2;
                else tag = (m >> 63) == 0 ? 2 : 0;
            }
            tw |= tag << (2 * p);
        }
        return (ushort)tw;
    }

    /// <summary>Abridges a full tag word: a register is occupied unless its tag is 11b.</summary>
    internal static byte AbridgeTags(ushort tw)
    {
        var t = 0;
        for (var p = 0; p < 8; p++)
            if (((tw >> (2 * p)) & 3) != 3) t |= 1 << p;
        return (byte)t;
    }

    private static void W16(Span<byte> b, int o, ushort v) => Unsafe.WriteUnaligned(ref b[o], v);
    private static void W32(Span<byte> b, int o, uint v) => Unsafe.WriteUnaligned(ref b[o], v);
    private static void W64(Span<byte> b, int o, ulong v) => Unsafe.WriteUnaligned(ref b[o], v);
    private static ushort R16(ReadOnlySpan<byte> b, int o) => Unsafe.ReadUnaligned<ushort>(ref Unsafe.AsRef(in b[o]));
    private static uint R32(ReadOnlySpan<byte> b, int o) => Unsafe.ReadUnaligned<uint>(ref Unsafe.AsRef(in b[o]));
    private static ulong R64(ReadOnlySpan<byte> b, int o) => Unsafe.ReadUnaligned<ulong>(ref Unsafe.AsRef(in b[o]));
}

/// <summary>MXCSR fields (SDM Vol. 1, 10.2.3).</summary>
public static class MxcsrBits
{
    public const uint Default = 0x1F80;
    /// <summary>Writable bits (MXCSR_MASK): flags, DAZ, masks, RC, FTZ.</summary>
    public const uint Mask = 0xFFFF;
    public const uint IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32, DAZ = 64, FTZ = 1 << 15;
    public const int MaskShift = 7, RcShift = 13;
}

/// <summary>x87 control word.</summary>
public static class FcwBits
{
    /// <summary>Bits that hold what is written: masks, PC, RC and the obsolete infinity control (bit 12).</summary>
    public const ushort Writable = 0x1F3F;
    /// <summary>Bit 6 reads as one whatever is loaded (as on the host); bits 7 and 13-15 read as zero.</summary>
    public const ushort Fixed1 = 0x40;

    public static ushort Load(ushort v) => (ushort)((v & Writable) | Fixed1);
}

/// <summary>x87 status word bits.</summary>
public static class FswBits
{
    public const ushort IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32, SF = 64, ES = 0x80;
    public const ushort C0 = 0x100, C1 = 0x200, C2 = 0x400, C3 = 0x4000, B = 0x8000;
}
