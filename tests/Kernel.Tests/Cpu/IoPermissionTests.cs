using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>IN/OUT under IOPL and the TSS I/O permission bitmap (SDM Vol. 1, 19.5).</summary>
public class IoPermissionTests
{
    private const ulong TssBase = 0x3_0000;
    private const ushort MapOffset = 0x68;

    /// <summary>A 32-bit (or 64-bit) TSS whose bitmap covers ports 0..0x7FF and denies the given ones.</summary>
    private static void InstallTss(CpuHarness h, ushort[] denied, uint mapBytes = 0x100, uint type = 0xB)
    {
        h.Memory.GetSpan(TssBase, 0x1000).Clear();
        h.Memory.WriteUInt16(TssBase + 0x66, MapOffset);
        foreach (var p in denied)
        {
            var a = TssBase + MapOffset + (ulong)(p >> 3);
            h.Memory.WriteByte(a, (byte)(h.Memory.ReadByte(a) | (1 << (p & 7))));
        }
        h.Memory.WriteByte(TssBase + MapOffset + mapBytes, 0xFF); // the required terminating byte
        h.Cpu.Tr = new SegmentRegister
        {
            Selector = 0x28, Base = TssBase, Limit = MapOffset + mapBytes,
            Attributes = type | SegmentRegister.AttrP,
        };
    }

    private static void Out(CpuHarness h, ushort port, int size)
    {
        h[Gpr.RDX] = port;
        h.Load(a =>
        {
            if (size == 1) a.@out(dx, al);
            else if (size == 2) a.@out(dx, ax);
            else a.@out(dx, eax);
        });
    }

    [Fact]
    public void BitmapDecidesAtCpl3BelowIopl()
    {
        var h = new CpuHarness(StartMode.Protected32);
        InstallTss(h, denied: [0x80, 0x3F7, 0x402]);
        h.EnterRing3(iopl: 0);
        h[Gpr.RAX] = 'x';
        Out(h, 0x3F8, 1);
        h.Step();
        Assert.Equal("x", h.Platform.Console.ToString());
        Out(h, 0x80, 1);
        h.ExpectFault(Vectors.GP, 0);
        Out(h, 0x3F7, 2);                 // covers 0x3F7 (denied) and 0x3F8
        h.ExpectFault(Vectors.GP, 0);
        Out(h, 0x3FF, 4);                 // 0x3FF-0x402 straddles two bitmap bytes; 0x402 is denied
        h.ExpectFault(Vectors.GP, 0);
        Out(h, 0x3FE, 4);                 // 0x3FE-0x401: allowed
        h.Step();
        h[Gpr.RDX] = 0x81;
        h.Load(a => a.@in(al, dx));
        h.Step();
        Assert.Equal(0xFFUL, h[Gpr.RAX] & 0xFF);
        Assert.DoesNotContain(h.Platform.PortWrites, w => w.Port == 0x80 || w.Port == 0x3F7);
    }

    [Fact]
    public void PortsBeyondTheTssLimitAreDenied()
    {
        var h = new CpuHarness(StartMode.Protected32);
        InstallTss(h, denied: [], mapBytes: 0x10); // covers ports 0..0x7F only
        h.EnterRing3(iopl: 0);
        Out(h, 0x70, 1);
        h.Step();
        Out(h, 0x7F, 2);                  // port 0x80 is in the all-ones byte after the map
        h.ExpectFault(Vectors.GP, 0);
        Out(h, 0x3F8, 1);
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void Iopl3BypassesTheBitmapOutsideVirtual8086Mode()
    {
        var h = new CpuHarness(StartMode.Long64);
        InstallTss(h, denied: [0x80]);
        h.EnterRing3(iopl: 3);
        Out(h, 0x80, 1);
        h.Step();
        h.EnterRing3(iopl: 2);
        Out(h, 0x80, 1);
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void Virtual8086ModeAlwaysConsultsTheBitmap()
    {
        var h = new CpuHarness(StartMode.Protected32);
        InstallTss(h, denied: [0x80]);
        for (var s = 0; s < 6; s++) h.Cpu.Segs[s] = SegmentRegister.RealMode(s == Seg.CS ? (ushort)0x1000 : (ushort)0x8000);
        h.Cpu.SetFlags(RFlags.VM | RFlags.IOPL);
        Assert.True(h.Cpu.V86Mode);
        Out(h, 0x80, 1);
        h.ExpectFault(Vectors.GP, 0);
        Out(h, 0x81, 1);
        h.Step();
    }

    [Fact]
    public void SixteenBitTssHasNoBitmap()
    {
        var h = new CpuHarness(StartMode.Protected32);
        InstallTss(h, denied: [], type: 0x3);
        h.EnterRing3(iopl: 0);
        Out(h, 0x3F8, 1);
        h.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void RealModeAndCpl0NeverCheck()
    {
        var r = new CpuHarness(StartMode.Real);
        Out(r, 0x80, 1);
        r.Step();
        var p = new CpuHarness(StartMode.Protected32);
        InstallTss(p, denied: [0x80]);
        Out(p, 0x80, 1);
        p.Step();
    }

    [Fact]
    public void ImmediatePortFormsUseTheSameChecks()
    {
        var h = new CpuHarness(StartMode.Protected32);
        InstallTss(h, denied: [0x80]);
        h.EnterRing3(iopl: 0);
        h.Load(a => a.@out(0x80, al));
        h.ExpectFault(Vectors.GP, 0);
        h.Load(a => a.@in(al, 0x80));
        h.ExpectFault(Vectors.GP, 0);
        h.Load(a => a.@out(0x81, al));
        h.Step();
    }
}
