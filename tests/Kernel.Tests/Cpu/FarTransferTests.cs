using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Far JMP/CALL/RET and IRET (SDM Vol. 2 JMP, CALL, RET, IRET; Vol. 3A 5.8): real-mode segment arithmetic,
/// the code-segment privilege rules, mode changes through CS (64-bit ↔ compatibility), the IRET flag rules,
/// and NMI blocking until IRET.
/// </summary>
public class FarTransferTests
{
    internal static readonly ulong[] Gdt =
    [
        0,
        GuestTables.Code64(0),                    // 0x08 } the boot GDT's layout, so the boot
        GuestTables.Code32(0),                    // 0x10 } CS and data selectors stay valid
        GuestTables.Data32(0),                    // 0x18 }
        GuestTables.Code32(3),                    // 0x20 (0x23)
        GuestTables.Data32(3),                    // 0x28 (0x2B)
        GuestTables.Code32(0, conforming: true),  // 0x30
        GuestTables.Segment(0, 0xFFFFF, 0x9A, 0xE), // 0x38: L and D both set: not valid in IA-32e mode
    ];

    private const ushort Code64 = 0x08, Code32 = 0x10, Data = 0x18, Code3 = 0x23, Data3 = 0x2B, Conforming = 0x30, BadLong = 0x38;

    /// <summary>Puts the CPU in ring 3 without a transfer, for unit tests of what ring 3 may do.</summary>
    internal static void EnterRing3(SoftwareCpu cpu, ushort code, ushort data)
    {
        cpu.Segs[Seg.CS] = SegmentRegister.FromDescriptor(code, Gdt[code >> 3] | 1UL << 40);
        var d = SegmentRegister.FromDescriptor(data, Gdt[data >> 3] | 1UL << 40);
        cpu.Segs[Seg.SS] = cpu.Segs[Seg.DS] = cpu.Segs[Seg.ES] = d;
        cpu.UpdateMode();
    }

    [Fact]
    public void RealModeFarJumpLoadsTheCsBase()
    {
        var g = SystemGuest.Boot(StartMode.Real, a => a.jmp(0x2000, 0x10));
        g.Memory.Write(0x20010, GuestRunner.Assemble(16, 0x10, a => a.mov(ax, 0x4242)));
        g.Step(2);
        Assert.Equal(0x2000, g.Cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0x20000UL, g.Cpu.Segs[Seg.CS].Base);
        Assert.Equal(0x4242UL, g.Cpu.Gprs[Gpr.RAX] & 0xFFFF);
    }

    [Fact]
    public void FarJumpToNonConformingCodeOfAnotherPrivilegeFaults()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a => a.jmp(Code3, 0x10000), Gdt);
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)0x20), (f.Vector, f.ErrorCode));
        Assert.Equal(0x10, g.Cpu.Segs[Seg.CS].Selector); // the boot CS: nothing changed
    }

    [Fact]
    public void FarJumpToConformingCodeKeepsTheCurrentPrivilege()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a => a.jmp(Conforming, 0x10100), Gdt);
        EnterRing3(g.Cpu, Code3, Data3);
        g.Step();
        Assert.Equal(Conforming | 3, g.Cpu.Segs[Seg.CS].Selector);
        Assert.Equal(3, g.Cpu.Cpl);
        Assert.Equal(0x10100UL, g.Cpu.Rip);
    }

    [Fact]
    public void FarJumpBeyondTheTargetLimitFaultsWithoutLoadingCs()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a => a.jmp(Code32, 0x10000), Gdt);
        g.Write64(SystemGuest.GdtBase + Code32, GuestTables.Segment(0, 0xFFF, 0x9A, 0x4)); // 4 KiB byte-granular
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)0), (f.Vector, f.ErrorCode));
        Assert.Equal(0x10, g.Cpu.Segs[Seg.CS].Selector);
    }

    [Fact]
    public void FarCallPushesCsAndEipAndRetfReturns()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.call(Code32, 0x10100);
            a.nop();
        }, Gdt);
        g.Memory.Write(0x10100, GuestRunner.Assemble(32, 0x10100, a => a.retf()));
        var esp = g.Cpu.Gprs[Gpr.RSP];
        g.Step();
        Assert.Equal(Code32, g.Cpu.Segs[Seg.CS].Selector);
        Assert.Equal(esp - 8, g.Cpu.Gprs[Gpr.RSP]);
        Assert.Equal(0x10007u, g.Memory.ReadUInt32(esp - 8)); // EIP after the 7-byte CALL ptr16:32
        Assert.Equal(0x10u, g.Memory.ReadUInt32(esp - 4));    // the boot CS
        g.Step();
        Assert.Equal(0x10, g.Cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0x10007UL, g.Cpu.Rip);
        Assert.Equal(esp, g.Cpu.Gprs[Gpr.RSP]);
    }

    [Fact]
    public void RetfqFrom64BitCodeToA32BitSegmentEntersCompatibilityMode()
    {
        var g = SystemGuest.Boot(StartMode.Long64, a =>
        {
            a.push(Code32);
            a.push(0x10100);
            a.db(0x48, 0xCB); // RETFQ (REX.W RETF)
        }, Gdt);
        g.Memory.WriteByte(0x10100, 0x40); // INC EAX in 32-bit code (a REX prefix in 64-bit code)
        g.Step(3);
        Assert.Equal(32, g.Cpu.Bitness);
        Assert.True(g.Cpu.LongModeActive);
        Assert.Equal(0x10100UL, g.Cpu.Rip);
        g.Cpu.Gprs[Gpr.RAX] = 41;
        g.Step();
        Assert.Equal(42UL, g.Cpu.Gprs[Gpr.RAX]);
    }

    [Fact]
    public void FarJumpThroughM1664EntersA64BitSegmentFromCompatibilityMode()
    {
        var g = SystemGuest.Boot(StartMode.Long64, a => { }, Gdt);
        // Start in compatibility mode (CS = 32-bit code, EFER.LMA = 1) with JMP FAR [0x9000].
        g.Cpu.Segs[Seg.CS] = SegmentRegister.FromDescriptor(Code32, Gdt[Code32 >> 3] | 1UL << 40);
        g.Cpu.UpdateMode();
        g.Memory.Write(0x10000, GuestRunner.Assemble(32, 0x10000, a => a.jmp(__fword_ptr[0x9000])));
        g.Memory.WriteUInt32(0x9000, 0x10200);
        g.Memory.WriteUInt16(0x9004, Code64);
        g.Step();
        Assert.True(g.Cpu.Is64);
        Assert.Equal(0x10200UL, g.Cpu.Rip);
    }

    [Fact]
    public void CodeSegmentWithLAndDBothSetIsRefusedInLongMode()
    {
        var g = SystemGuest.Boot(StartMode.Long64, a => a.jmp(__fword_ptr[0x9000]), Gdt);
        g.Memory.WriteUInt32(0x9000, 0x10200);
        g.Memory.WriteUInt16(0x9004, BadLong);
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)BadLong), (f.Vector, f.ErrorCode));
    }

    [Fact]
    public void IretInRing3CannotChangeIfOrIoplButLoadsArithmeticFlags()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.push(0x3201 | (int)RFlags.ZF);  // IOPL 3, IF, ZF, CF
            a.push(Code3);
            a.push(0x10100);
            a.iretd();
        }, Gdt);
        EnterRing3(g.Cpu, Code3, Data3);
        g.Step(4);
        var flags = g.Cpu.GetFlags();
        Assert.Equal(0x10100UL, g.Cpu.Rip);
        Assert.Equal(RFlags.CF | RFlags.ZF, flags & (RFlags.CF | RFlags.ZF));
        Assert.Equal(0UL, flags & (RFlags.IF | RFlags.IOPL));
    }

    [Fact]
    public void IretInRing0LoadsIfAndIopl()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.push(0x3202);
            a.push(Code32);
            a.push(0x10100);
            a.iretd();
        }, Gdt);
        g.Step(4);
        Assert.Equal(RFlags.IF | RFlags.IOPL, g.Cpu.GetFlags() & (RFlags.IF | RFlags.IOPL));
        Assert.Equal(Code32, g.Cpu.Segs[Seg.CS].Selector);
    }

    [Fact]
    public void IretToAnInnerPrivilegeFaults()
    {
        var g = SystemGuest.Boot(StartMode.Protected32, a =>
        {
            a.push(0x2);
            a.push(Code32);
            a.push(0x10100);
            a.iretd();
        }, Gdt);
        EnterRing3(g.Cpu, Code3, Data3);
        g.Step(3);
        var esp = g.Cpu.Gprs[Gpr.RSP];
        var f = g.StepFault();
        Assert.Equal((Vectors.GP, (uint?)Code32), (f.Vector, f.ErrorCode)); // RPL 0 < CPL 3
        Assert.Equal(esp, g.Cpu.Gprs[Gpr.RSP]);
        Assert.Equal(3, g.Cpu.Cpl);
    }

    [Fact]
    public void NmiIsBlockedUntilIret()
    {
        NmiPort? port = null;
        var g = Protected32.Create(p => port = new NmiPort(p));
        port!.Cpu = g.Cpu;
        const ulong count = Protected32.Results, depth = Protected32.Results + 4, maxDepth = Protected32.Results + 8;
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), nmi = a.CreateLabel(), notDeeper = a.CreateLabel(), leave = a.CreateLabel();
        Label wait = a.CreateLabel(), spin = a.CreateLabel();
        Protected32.Prologue(a, ref reloaded);
        a.mov(dx, NmiPort.Port);
        a.@out(dx, al);                  // the first NMI
        a.Label(ref wait);
        a.cmp(__dword_ptr[count], 2);
        a.jne(wait);
        Protected32.Exit(a, 0x2);

        a.Label(ref nmi);
        a.add(__dword_ptr[count], 1);
        a.add(__dword_ptr[depth], 1);
        a.mov(eax, __dword_ptr[depth]);
        a.cmp(eax, __dword_ptr[maxDepth]);
        a.jbe(notDeeper);
        a.mov(__dword_ptr[maxDepth], eax);
        a.Label(ref notDeeper);
        a.cmp(__dword_ptr[count], 1);
        a.jne(leave);
        a.mov(dx, NmiPort.Port);
        a.@out(dx, al);                  // a second NMI while the first is being handled
        a.mov(ecx, 50);                  // many block boundaries where it could nest
        a.Label(ref spin);
        a.dec(ecx);
        a.jnz(spin);
        a.Label(ref leave);
        a.sub(__dword_ptr[depth], 1);
        a.iretd();
        var at = g.Load(a, GuestRunner.DefaultLoad, reloaded, nmi);
        Protected32.SetFarPointer(g, at[0]);
        Protected32.SetGate(g, Vectors.NMI, at[1]);
        var r = g.Run(10_000);

        Assert.Equal(0x2u, r.ExitValue);
        Assert.Equal(2u, g.Memory.ReadUInt32(count));
        Assert.Equal(1u, g.Memory.ReadUInt32(maxDepth)); // the second NMI waited for IRET
        Assert.False(r.Cpu.NmiBlocked);
    }
}

/// <summary>A platform whose port 0xE9 raises an NMI on the CPU; everything else goes to the inner platform.</summary>
internal sealed class NmiPort(TestPlatform inner) : ICpuPlatform
{
    public const ushort Port = 0xE9;
    private TestPlatform Inner { get; } = inner;
    public SoftwareCpu? Cpu { get; set; }

    public uint PortRead(int vcpuId, ushort port, int size) => Inner.PortRead(vcpuId, port, size);

    public void PortWrite(int vcpuId, ushort port, int size, uint value)
    {
        if (port == Port) Cpu?.RequestNmi();
        else Inner.PortWrite(vcpuId, port, size, value);
    }

    public ulong MmioRead(int vcpuId, ulong address, int size) => Inner.MmioRead(vcpuId, address, size);
    public void MmioWrite(int vcpuId, ulong address, int size, ulong value) => Inner.MmioWrite(vcpuId, address, size, value);
}
