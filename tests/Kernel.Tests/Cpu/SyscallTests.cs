using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// SYSCALL/SYSRET and SYSENTER/SYSEXIT (SDM Vol. 2B): guest round trips between a ring-0 kernel and ring-3
/// user code, with the privilege level recorded at every probe, and the fault cases one instruction at a time.
/// </summary>
public class SyscallTests
{
    /// <summary>Port 0x80 is a probe: each byte written is recorded with the CPL and code size at that moment.</summary>
    private sealed class ProbePlatform : ICpuPlatform
    {
        public const ushort ProbePort = 0x80;
        public SoftwareCpu? Cpu;
        public readonly List<(char Tag, int Cpl, int Bitness)> Probes = new();
        public readonly System.Text.StringBuilder Console = new();

        public uint PortRead(int vcpuId, ushort port, int size) => 0xFF;

        public void PortWrite(int vcpuId, ushort port, int size, uint value)
        {
            if (port == ProbePort) Probes.Add(((char)value, Cpu!.Cpl, Cpu.Bitness));
            if (port == TestPlatform.ConsolePort) Console.Append((char)value);
        }

        public ulong MmioRead(int vcpuId, ulong address, int size) => ulong.MaxValue;
        public void MmioWrite(int vcpuId, ulong address, int size, ulong value) { }
    }

    /// <summary>Linux's GDT layout: kernel CS 0x10, kernel DS 0x18, user32 CS 0x23, user DS 0x2B, user CS 0x33.</summary>
    private static readonly ulong[] LinuxGdt =
    [
        0,
        0x00CF_9B00_0000_FFFFUL, // 0x08: 32-bit kernel code
        0x00AF_9B00_0000_FFFFUL, // 0x10: 64-bit kernel code
        0x00CF_9300_0000_FFFFUL, // 0x18: kernel data
        0x00CF_FB00_0000_FFFFUL, // 0x20: 32-bit user code (0x23)
        0x00CF_F300_0000_FFFFUL, // 0x28: user data (0x2B)
        0x00AF_FB00_0000_FFFFUL, // 0x30: 64-bit user code (0x33)
    ];

    private const ulong GdtBase = 0x9000, Scratch = 0x9F00, UserCode = 0x20_0000, UserStack = 0x3F_F000;
    private const ulong Fmask = RFlags.TF | RFlags.DF | RFlags.IF | RFlags.IOPL | RFlags.AC | RFlags.NT;

    private static (SoftwareCpu Cpu, ProbePlatform Platform, GuestMemory Memory) Machine(StartMode mode, Action<Assembler> kernel, Action<Assembler> user)
    {
        var mem = new GuestMemory(16 << 20);
        var platform = new ProbePlatform();
        var cpu = new SoftwareCpu(0, mem, platform);
        platform.Cpu = cpu;
        var bits = mode == StartMode.Long64 ? 64 : 32;
        mem.Write(GuestRunner.DefaultLoad, GuestRunner.Assemble(bits, GuestRunner.DefaultLoad, kernel));
        mem.Write(UserCode, GuestRunner.Assemble(bits, UserCode, user));
        if (mode == StartMode.Long64) CpuSetup.EnterLongMode(cpu, GuestRunner.DefaultLoad, 0x9_0000);
        else CpuSetup.EnterFlatProtectedMode(cpu, (uint)GuestRunner.DefaultLoad, 0x9_0000);
        for (var i = 0; i < LinuxGdt.Length; i++) mem.WriteUInt64(GdtBase + (ulong)i * 8, LinuxGdt[i]);
        cpu.Gdtr = new DescriptorTable { Base = GdtBase, Limit = (ushort)(LinuxGdt.Length * 8 - 1) };
        if (mode == StartMode.Long64)
        {
            // Only the 2 MiB page at 0x200000 is user-accessible; the kernel's first 2 MiB stay supervisor-only.
            mem.WriteUInt64(CpuSetup.Pml4Address, mem.ReadUInt64(CpuSetup.Pml4Address) | 4);
            mem.WriteUInt64(CpuSetup.PdptAddress, mem.ReadUInt64(CpuSetup.PdptAddress) | 4);
            mem.WriteUInt64(CpuSetup.PdAddress + 8, mem.ReadUInt64(CpuSetup.PdAddress + 8) | 4);
            cpu.FlushTlb(includeGlobal: true);
        }
        return (cpu, platform, mem);
    }

    private static CpuExitReason RunToHalt(SoftwareCpu cpu) => cpu.Run(10_000);

    /// <summary>
    /// The kernel programs STAR/LSTAR/FMASK and SYSRETs to user code on a user page; the user prints, makes a
    /// system call, is resumed by SYSRET, and makes an exit call on which the kernel halts. The handler
    /// switches to its own stack (SYSCALL does not) and records R11 and its own masked RFLAGS.
    /// </summary>
    [Fact]
    public void SyscallSysretRoundTripToRing3()
    {
        var (cpu, platform, mem) = Machine(StartMode.Long64, k =>
        {
            var handler = k.CreateLabel();
            var done = k.CreateLabel();
            k.mov(ecx, MsrIndex.Star);
            k.xor(eax, eax);
            k.mov(edx, 0x0023_0010u);
            k.wrmsr();
            k.mov(ecx, MsrIndex.Lstar);
            k.lea(rax, __[handler]);
            k.xor(edx, edx);
            k.wrmsr();
            k.mov(ecx, MsrIndex.Fmask);
            k.mov(eax, (uint)Fmask);
            k.wrmsr();
            k.xor(r15d, r15d);
            k.mov(al, (byte)'K');
            k.@out(0x80, al);
            k.mov(ecx, (uint)UserCode);
            k.mov(r11d, (uint)(RFlags.IF | RFlags.IOPL | RFlags.Fixed1));
            k.sysretq();

            k.Label(ref handler);
            k.mov(__qword_ptr[Scratch], rsp);       // user RSP
            k.mov(esp, 0x9_0000);                   // kernel stack
            k.pushfq();
            k.pop(rbx);
            k.mov(__qword_ptr[r15 * 8 + (long)Scratch + 0x10], r11);
            k.mov(__qword_ptr[r15 * 8 + (long)Scratch + 0x30], rbx);
            k.mov(__qword_ptr[r15 * 8 + (long)Scratch + 0x50], rcx);
            k.inc(r15d);
            k.push(rax);
            k.mov(al, (byte)'S');
            k.@out(0x80, al);
            k.pop(rax);
            k.cmp(eax, 2);
            k.je(done);
            k.mov(rsp, __qword_ptr[Scratch]);
            k.sysretq();
            k.Label(ref done);
            k.hlt();
        }, u =>
        {
            var after = u.CreateLabel();
            u.mov(esp, (uint)UserStack);
            u.mov(al, (byte)'U');
            u.@out(0x80, al);
            u.mov(dx, TestPlatform.ConsolePort);
            u.mov(al, (byte)'h');
            u.@out(dx, al);
            u.mov(al, (byte)'i');
            u.@out(dx, al);
            u.mov(eax, 1);
            u.syscall();
            u.Label(ref after);
            u.mov(al, (byte)'u');
            u.@out(0x80, al);
            u.mov(__qword_ptr[UserStack], rsp);     // the user stack survived the call
            u.mov(eax, 2);
            u.syscall();
            u.ud2();
        });

        Assert.Equal(CpuExitReason.Halted, RunToHalt(cpu));
        Assert.Equal(new[] { ('K', 0, 64), ('U', 3, 64), ('S', 0, 64), ('u', 3, 64), ('S', 0, 64) }, platform.Probes);
        Assert.Equal("hi", platform.Console.ToString());
        Assert.Equal(0, cpu.Cpl);
        Assert.Equal(0x10, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0x18, cpu.Segs[Seg.SS].Selector);
        Assert.Equal(2UL, cpu.Gprs[Gpr.R15]);

        var userFlags = RFlags.IF | RFlags.IOPL | RFlags.Fixed1;
        for (ulong n = 0; n < 2; n++)
        {
            // R11 holds the user's RFLAGS; inside the handler FMASK has cleared IF and IOPL.
            Assert.Equal(userFlags, mem.ReadUInt64(Scratch + 0x10 + n * 8) & ~RFlags.Arith);
            Assert.Equal(RFlags.Fixed1, mem.ReadUInt64(Scratch + 0x30 + n * 8) & ~RFlags.Arith);
        }
        // RCX held the address after each SYSCALL (the first one returns to the 'u' probe).
        var first = mem.ReadUInt64(Scratch + 0x50);
        Assert.InRange(first, UserCode, UserCode + 0x40);
        Assert.Equal(0xB0, mem.ReadByte(first)); // mov al, 'u'
        Assert.Equal((byte)'u', mem.ReadByte(first + 1));
        Assert.Equal(UserStack, mem.ReadUInt64(UserStack));
    }

    private static CpuHarness LongAtCpl0WithStar()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Cpu.Star = 0x0023_0010_0000_0000;
        h.Cpu.Lstar = 0xFFFF_FFFF_8100_0000;
        h.Cpu.Fmask = Fmask;
        return h;
    }

    [Fact]
    public void SyscallLoadsFixedSegmentsAndMasksFlags()
    {
        var h = LongAtCpl0WithStar();
        h.EnterRing3(iopl: 3);
        h.Cpu.SetFlags(h.Cpu.GetFlags() | RFlags.IF | RFlags.RF | RFlags.AC | RFlags.CF);
        h.Load(a => a.syscall());
        h.Step();
        Assert.Equal(CpuHarness.CodeAddress + 2, h[Gpr.RCX]);
        Assert.Equal(RFlags.IF | RFlags.AC | RFlags.CF | RFlags.IOPL | RFlags.Fixed1, h[Gpr.R11]); // RF cleared
        Assert.Equal(RFlags.CF | RFlags.Fixed1, h.Cpu.GetFlags());
        Assert.Equal(0xFFFF_FFFF_8100_0000UL, h.Cpu.Rip);
        Assert.Equal(0, h.Cpu.Cpl);
        Assert.Equal(64, h.Cpu.Bitness);
        var cs = h.Cpu.Segs[Seg.CS];
        var ss = h.Cpu.Segs[Seg.SS];
        Assert.Equal(0x10, cs.Selector);
        Assert.Equal(0x18, ss.Selector);
        // Flat 4 GiB: type 11 (execute/read, accessed), S, P, G, L for CS; type 3, S, P, G, B for SS.
        Assert.Equal((0UL, 0xFFFF_FFFFu, 0xA09Bu), (cs.Base, cs.Limit, cs.Attributes));
        Assert.Equal((0UL, 0xFFFF_FFFFu, 0xC093u), (ss.Base, ss.Limit, ss.Attributes));
    }

    [Fact]
    public void SysretToCompatibilityModeUsesEcxAndThe32BitSelector()
    {
        var h = LongAtCpl0WithStar();
        h[Gpr.RCX] = 0xFFFF_FFFF_0004_0000; // only ECX is used
        h[Gpr.R11] = RFlags.IF | RFlags.RF | RFlags.VM | RFlags.ZF;
        h.Load(a => a.sysret());
        h.Step();
        Assert.Equal(0x4_0000UL, h.Cpu.Rip);
        Assert.Equal(3, h.Cpu.Cpl);
        Assert.Equal(32, h.Cpu.Bitness);
        Assert.True(h.Cpu.LongModeActive);
        Assert.Equal(0x23, h.Cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0x2B, h.Cpu.Segs[Seg.SS].Selector);
        Assert.Equal(RFlags.IF | RFlags.ZF | RFlags.Fixed1, h.Cpu.GetFlags()); // RF and VM never come back
    }

    [Fact]
    public void Sysret64To64BitModeUsesTheSelectorPlus16()
    {
        var h = LongAtCpl0WithStar();
        h[Gpr.RCX] = 0x0000_7FFF_FFFF_F000;
        h[Gpr.R11] = RFlags.Fixed1;
        h.Load(a => a.sysretq());
        h.Step();
        Assert.Equal(0x0000_7FFF_FFFF_F000UL, h.Cpu.Rip);
        Assert.Equal(0x33, h.Cpu.Segs[Seg.CS].Selector);
        Assert.Equal(3, h.Cpu.Segs[Seg.CS].Dpl);
        Assert.Equal(64, h.Cpu.Bitness);
    }

    [Fact]
    public void SysretWithNonCanonicalRcxFaultsAtCpl0()
    {
        var h = LongAtCpl0WithStar();
        h[Gpr.RCX] = 0x0000_8000_0000_0000;
        h.Load(a => a.sysretq());
        h.ExpectFault(Vectors.GP, 0);
        Assert.Equal(0, h.Cpu.Cpl);
        Assert.Equal(CpuSetup.Code64, h.Cpu.Segs[Seg.CS].Selector);
    }

    [Fact]
    public void SyscallIsUndefinedWithoutSceOrOutside64BitMode()
    {
        var h = LongAtCpl0WithStar();
        h.Cpu.EferValue &= ~Efer.SCE;
        h.Load(a => a.syscall());
        h.ExpectFault(Vectors.UD);
        h.Load(a => a.sysretq());
        h.ExpectFault(Vectors.UD);

        var p = new CpuHarness(StartMode.Protected32);
        p.Cpu.EferValue |= Efer.SCE;
        p.LoadBytes(0x0F, 0x05);
        p.ExpectFault(Vectors.UD);

        // Compatibility mode: Intel processors have no SYSCALL there.
        var c = LongAtCpl0WithStar();
        c[Gpr.RCX] = CpuHarness.CodeAddress + 0x100;
        c[Gpr.R11] = RFlags.Fixed1;
        c.Load(a => a.sysret());
        c.Step();
        c.Memory.Write(CpuHarness.CodeAddress + 0x100, new byte[] { 0x0F, 0x05 });
        c.MakeIdentityMapUser();
        c.ExpectFault(Vectors.UD);
    }

    [Fact]
    public void SysretAtCpl3RaisesGp()
    {
        var h = LongAtCpl0WithStar();
        h.EnterRing3();
        h.Load(a => a.sysretq());
        h.ExpectFault(Vectors.GP, 0);
    }

    /// <summary>32-bit SYSENTER/SYSEXIT (SDM Vol. 2B): user code passes its return ESP/EIP in ECX/EDX.</summary>
    [Fact]
    public void SysenterSysexitRoundTripIn32BitMode()
    {
        // Fixed addresses (Iced's 32-bit assembler has no absolute label operands): kernel entry, and the
        // user code after each SYSENTER.
        const uint entry = 0x1_1000, back = (uint)UserCode + 0x100, never = (uint)UserCode + 0x200;
        var (cpu, platform, mem) = Machine(StartMode.Protected32, k =>
        {
            k.mov(ecx, MsrIndex.SysenterCs);
            k.mov(eax, 0x08u);
            k.xor(edx, edx);
            k.wrmsr();
            k.mov(ecx, MsrIndex.SysenterEsp);
            k.mov(eax, 0x8_F000u);
            k.wrmsr();
            k.mov(ecx, MsrIndex.SysenterEip);
            k.mov(eax, entry);
            k.wrmsr();
            k.pushfd();
            k.or(__dword_ptr[esp], (int)(RFlags.IOPL | RFlags.IF)); // ring 3 may use the probe port
            k.popfd();
            k.mov(al, (byte)'K');
            k.@out(0x80, al);
            k.mov(ecx, (uint)UserStack);
            k.mov(edx, (uint)UserCode);
            k.sysexit();
        }, u =>
        {
            u.mov(al, (byte)'U');
            u.@out(0x80, al);
            u.mov(ecx, esp);
            u.mov(edx, back);
            u.mov(eax, 1);
            u.sysenter();
        });
        mem.Write(entry, GuestRunner.Assemble(32, entry, k =>
        {
            var done = k.CreateLabel();
            k.mov(ebx, esp);
            k.push(eax);
            k.mov(al, (byte)'E');
            k.@out(0x80, al);
            k.pop(eax);
            k.cmp(eax, 2);
            k.je(done);
            k.sysexit();            // ECX/EDX still hold what the user passed
            k.Label(ref done);
            k.hlt();
        }));
        mem.Write(back, GuestRunner.Assemble(32, back, u =>
        {
            u.mov(al, (byte)'u');
            u.@out(0x80, al);
            u.mov(ecx, esp);
            u.mov(edx, never);
            u.mov(eax, 2);
            u.sysenter();
        }));
        mem.Write(never, GuestRunner.Assemble(32, never, u => u.ud2()));

        Assert.Equal(CpuExitReason.Halted, RunToHalt(cpu));
        Assert.Equal(new[] { ('K', 0, 32), ('U', 3, 32), ('E', 0, 32), ('u', 3, 32), ('E', 0, 32) }, platform.Probes);
        Assert.Equal(0x8_F000UL, cpu.Gprs[Gpr.RBX]);       // SYSENTER loaded ESP from the MSR
        Assert.Equal(0x08, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0x10, cpu.Segs[Seg.SS].Selector);
        Assert.False(cpu.IF);                              // SYSENTER cleared the IF the kernel had set
        Assert.Equal(3, cpu.Iopl);
    }

    [Fact]
    public void SysexitWithRexWReturnsTo64BitCode()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Cpu.SysenterCs = 0x10;
        h[Gpr.RCX] = 0x0000_7FFF_0000_1000; // RSP
        h[Gpr.RDX] = 0x0000_7FFF_0000_2000; // RIP
        h.Load(a => a.sysexitq());
        h.Step();
        Assert.Equal(0x0000_7FFF_0000_2000UL, h.Cpu.Rip);
        Assert.Equal(0x0000_7FFF_0000_1000UL, h[Gpr.RSP]);
        Assert.Equal(0x33, h.Cpu.Segs[Seg.CS].Selector);  // SYSENTER_CS + 32, RPL 3
        Assert.Equal(0x3B, h.Cpu.Segs[Seg.SS].Selector);  // SYSENTER_CS + 40, RPL 3
        Assert.Equal(64, h.Cpu.Bitness);
        Assert.Equal(3, h.Cpu.Cpl);

        var g = new CpuHarness(StartMode.Long64);
        g.Cpu.SysenterCs = 0x10;
        g[Gpr.RDX] = 0x0000_8000_0000_0000;
        g.Load(a => a.sysexitq());
        g.ExpectFault(Vectors.GP, 0);
    }

    [Fact]
    public void SysenterIn64BitModeUses64BitMsrsAndSysexitToCompatibilityMode()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.Cpu.SysenterCs = 0x10;
        h.Cpu.SysenterEsp = 0xFFFF_8000_0000_1000;
        h.Cpu.SysenterEip = 0xFFFF_FFFF_8000_0000;
        h.Cpu.SetFlags(h.Cpu.GetFlags() | RFlags.IF);
        h.EnterRing3(iopl: 0);
        h.Load(a => a.sysenter());
        h.Step();
        Assert.Equal(0xFFFF_FFFF_8000_0000UL, h.Cpu.Rip);
        Assert.Equal(0xFFFF_8000_0000_1000UL, h[Gpr.RSP]);
        Assert.Equal(0, h.Cpu.Cpl);
        Assert.Equal(64, h.Cpu.Bitness);
        Assert.False(h.Cpu.IF);

        var c = new CpuHarness(StartMode.Long64);
        c.Cpu.SysenterCs = 0x10;
        c[Gpr.RCX] = 0xFFFF_FFFF_0000_3000;
        c[Gpr.RDX] = 0xFFFF_FFFF_0000_4000;
        c.Load(a => a.sysexit());
        c.Step();
        Assert.Equal(0x4000UL, c.Cpu.Rip);
        Assert.Equal(0x3000UL, c[Gpr.RSP]);
        Assert.Equal(0x23, c.Cpu.Segs[Seg.CS].Selector); // SYSENTER_CS + 16, RPL 3
        Assert.Equal(32, c.Cpu.Bitness);
    }

    [Fact]
    public void SysenterFaultsInRealModeOrWithANullSelector()
    {
        var r = new CpuHarness(StartMode.Real);
        r.Cpu.SysenterCs = 0x08;
        r.Load(a => a.sysenter());
        r.ExpectFault(Vectors.GP, 0);
        var p = new CpuHarness(StartMode.Protected32);
        p.Cpu.SysenterCs = 0x3; // null selector with an RPL
        p.Load(a => a.sysenter());
        p.ExpectFault(Vectors.GP, 0);
        p.Cpu.SysenterCs = 0x08;
        p.EnterRing3();
        p.Load(a => a.sysexit());
        p.ExpectFault(Vectors.GP, 0);
    }
}
