using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// FNSTENV/FLDENV and FNSAVE/FRSTOR in the protected-mode layouts (SDM Vol. 1, Figures 8-9 to 8-12): the
/// 28-byte environment with a 32-bit operand size, 14 bytes with a 16-bit one, then ST(0)..ST(7) as
/// 10-byte values for the save forms. The real-mode layouts (FIP/FDP as 20-bit linear addresses) are not
/// implemented: in real and virtual-8086 mode these instructions use the protected-mode layout too.
/// </summary>
internal static unsafe class FpuEnvironment
{
    public static void Register(Dispatch.HandlerTable t)
    {
        t.Set(Mnemonic.Fnstenv, &Fnstenv);
        t.Set(Mnemonic.Fldenv, &Fldenv);
        t.Set(Mnemonic.Fnsave, &Fnsave);
        t.Set(Mnemonic.Frstor, &Frstor);
    }

    private static bool Wide(in Instruction i) => i.MemorySize is MemorySize.FpuEnv28 or MemorySize.FpuState108;

    /// <summary>The environment image (reserved upper halves of the 32-bit layout read as ones, as on the host).</summary>
    private static void EnvImage(SoftwareCpu c, bool wide, Span<byte> b)
    {
        var tw = c.FullTagWord();
        if (wide)
        {
            BitConverter.TryWriteBytes(b[0..], 0xFFFF0000u | c.Fcw);
            BitConverter.TryWriteBytes(b[4..], 0xFFFF0000u | c.Fsw);
            BitConverter.TryWriteBytes(b[8..], 0xFFFF0000u | tw);
            BitConverter.TryWriteBytes(b[12..], (uint)c.Fip);
            BitConverter.TryWriteBytes(b[16..], c.Fcs | ((uint)(c.Fop & 0x7FF) << 16));
            BitConverter.TryWriteBytes(b[20..], (uint)c.Fdp);
            BitConverter.TryWriteBytes(b[24..], 0xFFFF0000u | c.Fds);
        }
        else
        {
            BitConverter.TryWriteBytes(b[0..], c.Fcw);
            BitConverter.TryWriteBytes(b[2..], c.Fsw);
            BitConverter.TryWriteBytes(b[4..], tw);
            BitConverter.TryWriteBytes(b[6..], (ushort)c.Fip);
            BitConverter.TryWriteBytes(b[8..], c.Fcs);
            BitConverter.TryWriteBytes(b[10..], (ushort)c.Fdp);
            BitConverter.TryWriteBytes(b[12..], c.Fds);
        }
    }

    private static void LoadEnv(SoftwareCpu c, bool wide, ReadOnlySpan<byte> b)
    {
        int o = wide ? 4 : 2;
        c.Fcw = FcwBits.Load(BitConverter.ToUInt16(b));
        c.Fsw = BitConverter.ToUInt16(b[o..]);
        c.FpuTags = SoftwareCpu.AbridgeTags(BitConverter.ToUInt16(b[(2 * o)..]));
        if (wide)
        {
            c.Fip = BitConverter.ToUInt32(b[12..]);
            c.Fcs = BitConverter.ToUInt16(b[16..]);
            c.Fop = (ushort)(BitConverter.ToUInt16(b[18..]) & 0x7FF);
            c.Fdp = BitConverter.ToUInt32(b[20..]);
            c.Fds = BitConverter.ToUInt16(b[24..]);
        }
        else
        {
            c.Fip = BitConverter.ToUInt16(b[6..]);
            c.Fcs = BitConverter.ToUInt16(b[8..]);
            c.Fdp = BitConverter.ToUInt16(b[10..]);
            c.Fds = BitConverter.ToUInt16(b[12..]);
        }
    }

    private static void Store(SoftwareCpu c, in Instruction i, bool withRegisters)
    {
        c.CheckX87Available();
        var wide = Wide(in i);
        var envSize = wide ? 28 : 14;
        var size = envSize + (withRegisters ? 80 : 0);
        var la = c.MemoryLinear(in i, size, AccessKind.Write);
        Span<byte> b = stackalloc byte[size];
        EnvImage(c, wide, b);
        if (withRegisters)
            for (var k = 0; k < 8; k++)
            {
                var p = (c.FpuTop + k) & 7;
                BitConverter.TryWriteBytes(b[(envSize + 10 * k)..], c.FpuMant[p]);
                BitConverter.TryWriteBytes(b[(envSize + 10 * k + 8)..], c.FpuExp[p]);
            }
        c.ProbeWrite(la, size);
        for (var k = 0; k < size; k++) c.WriteLinear(la + (ulong)k, 1, b[k]);
    }

    private static void Load(SoftwareCpu c, in Instruction i, bool withRegisters)
    {
        c.CheckX87Waiting();
        var wide = Wide(in i);
        var envSize = wide ? 28 : 14;
        var size = envSize + (withRegisters ? 80 : 0);
        var la = c.MemoryLinear(in i, size, AccessKind.Read);
        Span<byte> b = stackalloc byte[size];
        for (var k = 0; k < size; k++) b[k] = (byte)c.ReadLinear(la + (ulong)k, 1);
        LoadEnv(c, wide, b);
        if (withRegisters)
            for (var k = 0; k < 8; k++)
            {
                var p = (c.FpuTop + k) & 7;
                c.FpuMant[p] = BitConverter.ToUInt64(b[(envSize + 10 * k)..]);
                c.FpuExp[p] = BitConverter.ToUInt16(b[(envSize + 10 * k + 8)..]);
            }
    }

    /// <summary>FNSTENV: stores the environment, then masks every exception.</summary>
    private static void Fnstenv(SoftwareCpu c, in Instruction i)
    {
        Store(c, in i, false);
        c.Fcw |= 0x3F;
    }

    private static void Fldenv(SoftwareCpu c, in Instruction i) => Load(c, in i, false);

    /// <summary>FNSAVE: stores the environment and registers, then initialises the unit as FNINIT.</summary>
    private static void Fnsave(SoftwareCpu c, in Instruction i)
    {
        Store(c, in i, true);
        c.FpuInit();
    }

    private static void Frstor(SoftwareCpu c, in Instruction i) => Load(c, in i, true);
}
