using Actorvisor.Kernel.Cpu;
using Iced.Intel;
using static Actorvisor.Kernel.Tests.Cpu.Protected32;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Exception delivery in 32-bit protected mode (SDM Vol. 3A ch. 6): error codes of segment-load faults,
/// the EXT and IDT bits, the double-fault rules of Table 6-5, and the software-exception instructions.
/// </summary>
public class ExceptionDeliveryTests
{
    private const ulong LogPtr = Results + 0x80, Log = Results + 0x100, Saved = Results + 0xF00;

    /// <summary>
    /// A handler that appends (vector, error code) to the log, drops the error code and resumes after the
    /// 2-byte instruction that faulted (MOV Sreg, r32 and INT n are both two bytes).
    /// </summary>
    private static void LoggingHandler(Assembler a, int vector, bool hasErrorCode = true)
    {
        a.mov(__dword_ptr[Saved], eax);
        a.mov(__dword_ptr[Saved + 4], ecx);
        a.mov(ecx, __dword_ptr[LogPtr]);
        a.mov(__dword_ptr[ecx], vector);
        a.mov(eax, hasErrorCode ? __dword_ptr[esp] : __dword_ptr[esp - 4]);
        if (!hasErrorCode) a.mov(eax, 0xFFFFFFFF);
        a.mov(__dword_ptr[ecx + 4], eax);
        a.add(__dword_ptr[LogPtr], 8);
        a.mov(eax, __dword_ptr[Saved]);
        a.mov(ecx, __dword_ptr[Saved + 4]);
        if (hasErrorCode) a.add(esp, 4);
        a.add(__dword_ptr[esp], 2);
        a.iretd();
    }

    private static List<(uint Vector, uint Error)> ReadLog(SystemGuest g)
    {
        var list = new List<(uint, uint)>();
        var end = g.Memory.ReadUInt32(LogPtr);
        for (var p = Log; p < end; p += 8) list.Add((g.Memory.ReadUInt32(p), g.Memory.ReadUInt32(p + 4)));
        return list;
    }

    [Fact]
    public void SegmentLoadFaultsReportTheSelectorInTheErrorCode()
    {
        var g = Create();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), np = a.CreateLabel(), stackFault = a.CreateLabel(), gp = a.CreateLabel();
        Prologue(a, ref reloaded);
        void Load(AssemblerRegisterSegment sreg, ushort selector)
        {
            // MOV Sreg, r32 has no operand-size prefix: two bytes, as the handler's skip expects.
            a.mov(ebx, selector);
            a.mov(sreg, ebx);
        }
        Load(ds, 0x1238);             // beyond the GDT limit: #GP(0x1238)
        Load(es, NotPresentData);     // #NP(0x38)
        Load(ss, NotPresentStack);    // #SS(0x48)
        Load(ss, 0);                  // null SS: #GP(0)
        Load(ss, Data3);              // RPL 3 ≠ CPL 0: #GP(0x20)
        Load(ss, Data3 & 0xFFFC);     // DPL 3 ≠ CPL 0: #GP(0x20)
        Load(fs, ExecuteOnlyCode);    // not readable: #GP(0x40)
        Load(ss, Code0);              // code is not a stack: #GP(0x08)
        Load(gs, TssSel);             // a system descriptor: #GP(0x28)
        a.@int(0x50);                 // not-present gate: #NP(0x50*8+2), EXT clear for INT n
        Load(fs, Data3Plain & 0xFFFC); // DPL 3 data from ring 0: fine, and now accessed
        Load(es, 0);                  // a null data selector loads
        Load(ds, Code0);              // readable code loads into DS
        Exit(a, 0x600D);
        a.Label(ref np);
        LoggingHandler(a, Vectors.NP);
        a.Label(ref stackFault);
        LoggingHandler(a, Vectors.SS);
        a.Label(ref gp);
        LoggingHandler(a, Vectors.GP);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, np, stackFault, gp);
        SetFarPointer(g, at[0]);
        SetGate(g, Vectors.NP, at[1]);
        SetGate(g, Vectors.SS, at[2]);
        SetGate(g, Vectors.GP, at[3]);
        SetGate(g, 0x50, at[1], dpl: 3, present: false);
        g.Memory.WriteUInt32(LogPtr, (uint)Log);
        var r = g.Run();

        Assert.True(r.ExitValue == 0x600D, $"{r.Exit} {r.Cpu} log={string.Join(",", ReadLog(g))} {r.Cpu.LastUnimplemented}");
        Assert.Equal(
        [
            (13u, 0x1238u), (11u, 0x38u), (12u, 0x48u), (13u, 0u), (13u, 0x20u), (13u, 0x20u), (13u, 0x40u),
            (13u, 0x08u), (13u, 0x28u), (11u, 0x50u * 8 + 2),
        ], ReadLog(g));
        var cpu = r.Cpu;
        Assert.Equal(Data0, cpu.Segs[Seg.SS].Selector); // every faulting SS load left SS alone
        Assert.Equal(Code0, cpu.Segs[Seg.DS].Selector);
        Assert.True(cpu.Segs[Seg.ES].Unusable);
        Assert.Equal(Data3Plain & 0xFFFC, cpu.Segs[Seg.FS].Selector);
        // The load set the accessed bit in the descriptor (type bit 0 of byte 5).
        Assert.Equal(1, g.Memory.ReadByte(Gdt + (Data3Plain & ~7u) + 5) & 1);
    }

    [Fact]
    public void ExternalInterruptThroughNotPresentGateSetsExtInTheErrorCode()
    {
        var g = Create();
        var source = new OneShotInterrupt(g.Cpu, 0x51, afterInstructions: 30);
        g.Cpu.Interrupts = source;
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), np = a.CreateLabel(), loop = a.CreateLabel();
        Prologue(a, ref reloaded);
        a.sti();
        a.Label(ref loop);
        a.inc(ecx);
        a.jmp(loop);
        a.Label(ref np);
        a.pop(eax);
        a.mov(__dword_ptr[Results], eax);
        a.pop(eax);
        a.mov(__dword_ptr[Results + 4], eax);
        Exit(a, 0x11);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, np, loop);
        SetFarPointer(g, at[0]);
        SetGate(g, Vectors.NP, at[1]);
        SetGate(g, 0x51, at[1], present: false);
        var r = g.Run();

        Assert.Equal(0x11u, r.ExitValue);
        Assert.Equal(1, source.Acknowledged);
        Assert.Equal(0x51u * 8 + 2 + 1, g.Memory.ReadUInt32(Results)); // IDT bit and EXT
        // An interrupt is taken between instructions: the saved EIP is one of the loop's two, not past them.
        var eip = g.Memory.ReadUInt32(Results + 4);
        Assert.InRange(eip, (uint)at[2], (uint)at[2] + 2);
    }

    [Theory]
    [InlineData(true, 1u)]   // an external interrupt: EXT set
    [InlineData(false, 0u)]  // INT n: EXT clear
    public void FaultWhileDeliveringCarriesExtOnlyForEventsTheProgramDidNotRaise(bool external, uint expected)
    {
        const ushort smallCode = 0x58;
        var g = Create();
        g.Write64(Gdt + smallCode, GuestTables.Segment(0, 0xFFF, 0x9A, 0x4)); // code, limit 4 KiB
        g.Memory.WriteUInt16(GdtPtr, smallCode + 7);
        if (external) g.Cpu.Interrupts = new OneShotInterrupt(g.Cpu, 0x52, afterInstructions: 30);
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), gp = a.CreateLabel(), loop = a.CreateLabel();
        Prologue(a, ref reloaded);
        if (external)
        {
            a.sti();
            a.Label(ref loop);
            a.jmp(loop);
        }
        else a.@int(0x52);
        Exit(a, 0xBAD);
        a.Label(ref gp);
        a.pop(eax);
        a.mov(__dword_ptr[Results], eax);
        Exit(a, 0x52);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, gp);
        SetFarPointer(g, at[0]);
        SetGate(g, Vectors.GP, at[1]);
        // The gate's entry point lies beyond its code segment's limit: #GP(0), plus EXT.
        g.Write64(Idt + 0x52 * 8, GuestTables.Gate(smallCode, 0x10000, GuestTables.InterruptGate32, dpl: 0));
        g.Memory.WriteUInt32(Results, 0xFFFF_FFFF);
        var r = g.Run();

        Assert.Equal(0x52u, r.ExitValue);
        Assert.Equal(expected, g.Memory.ReadUInt32(Results));
    }

    [Fact]
    public void ContributoryFaultWhileDeliveringContributoryFaultIsDoubleFault()
    {
        var g = Create();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), faulting = a.CreateLabel(), df = a.CreateLabel(), np = a.CreateLabel();
        Prologue(a, ref reloaded);
        a.mov(bx, 0x1234);
        a.Label(ref faulting);
        a.mov(ds, bx);
        Exit(a, 0xBAD);
        a.Label(ref np);
        Exit(a, 0xBAD2);
        a.Label(ref df);
        a.pop(eax);
        a.mov(__dword_ptr[Results], eax);
        a.pop(eax);
        a.mov(__dword_ptr[Results + 4], eax);
        a.mov(__dword_ptr[Results + 8], esp);
        Out(a, 'D');
        Exit(a, 0xDF);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, faulting, df, np);
        SetFarPointer(g, at[0]);
        SetGate(g, Vectors.GP, at[3], present: false); // #GP delivery raises #NP: contributory on contributory
        SetGate(g, Vectors.NP, at[3]);
        SetGate(g, Vectors.DF, at[2]);
        g.Memory.WriteUInt32(Results, 0xFFFF_FFFF);
        var r = g.Run();

        Assert.Equal(0xDFu, r.ExitValue);
        Assert.Equal("D", r.Console);
        Assert.Equal(0u, g.Memory.ReadUInt32(Results));              // #DF pushes error code 0
        Assert.Equal((uint)at[1], g.Memory.ReadUInt32(Results + 4)); // and points at the first fault
        // Same privilege: the #DF frame (error code, EIP, CS, EFLAGS) sits on the faulting code's stack.
        Assert.Equal(BootStack - 8, g.Memory.ReadUInt32(Results + 8));
    }

    [Fact]
    public void Int1IgnoresTheGateDplWhileInt3AndIntoAreSoftwareExceptions()
    {
        var g = Create();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), ring3 = a.CreateLabel(), handler = a.CreateLabel(), gp = a.CreateLabel();
        Label int3 = a.CreateLabel();
        Prologue(a, ref reloaded);
        // Ring 0: INTO does nothing with OF clear, traps to vector 4 with OF set.
        a.xor(eax, eax);
        a.into();
        a.mov(al, 0x7F);
        a.add(al, 1);
        a.into();
        EnterRing3(a);
        a.Label(ref ring3);
        a.mov(ax, Data3);
        a.mov(ds, ax);
        a.int1();                     // gate DPL 0, but INT1 is not checked
        a.Label(ref int3);
        a.int3();                     // gate DPL 0 from ring 3: #GP(3*8+2)
        Exit(a, 0xBAD);

        // Vector 1 and 4 handler: log the vector's return EIP, then return.
        a.Label(ref handler);
        a.mov(ecx, __dword_ptr[esp]);
        a.mov(__dword_ptr[Results + 0x10], ecx);
        a.add(__dword_ptr[Results + 0x20], 1);
        a.iretd();

        a.Label(ref gp);
        a.mov(bx, Data0);
        a.mov(ds, bx);
        a.pop(eax);
        a.mov(__dword_ptr[Results], eax);
        a.pop(eax);
        a.mov(__dword_ptr[Results + 4], eax);
        Exit(a, 0x3);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, ring3, handler, gp, int3);
        SetFarPointer(g, at[0]);
        SetRing3Entry(g, at[1]);
        SetGate(g, Vectors.DB, at[2], dpl: 0);
        SetGate(g, Vectors.OF, at[2], dpl: 0);
        SetGate(g, Vectors.BP, at[2], dpl: 0);
        SetGate(g, Vectors.GP, at[3], dpl: 0);
        var r = g.Run();

        Assert.Equal(0x3u, r.ExitValue);
        Assert.Equal(2u, g.Memory.ReadUInt32(Results + 0x20));        // INTO once, INT1 once
        Assert.Equal((uint)at[4], g.Memory.ReadUInt32(Results + 0x10)); // INT1 returns after itself
        Assert.Equal(3u * 8 + 2, g.Memory.ReadUInt32(Results));        // INT3 refused by DPL: #GP(IDT, vector 3)
        Assert.Equal((uint)at[4], g.Memory.ReadUInt32(Results + 4));   // ... reported at the INT3 itself
    }
}

/// <summary>An interrupt source that offers one vector once the CPU has run a number of instructions.</summary>
internal sealed class OneShotInterrupt(SoftwareCpu cpu, int vector, long afterInstructions = 0) : IInterruptSource
{
    public int Acknowledged { get; private set; }
    public long AcknowledgedAt { get; private set; } = -1;

    public bool HasPendingInterrupt => Acknowledged == 0 && cpu.InstructionCount >= afterInstructions;

    public int AcknowledgeInterrupt()
    {
        if (!HasPendingInterrupt) return -1;
        Acknowledged++;
        AcknowledgedAt = cpu.InstructionCount;
        return vector;
    }
}
