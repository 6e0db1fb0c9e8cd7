using Actorvisor.Kernel.Cpu;
using Iced.Intel;
using static Actorvisor.Kernel.Tests.Cpu.Long64;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Event delivery in IA-32e mode (SDM 6.14): the 64-bit frame, IST stacks, RSP alignment, privilege changes
/// with a null SS, and page faults: fixed by the handler and retried, during delivery (#DF), and during
/// #DF delivery (shutdown).
/// </summary>
public class LongModeDeliveryTests
{
    private const ulong Hole = 0x345000;

    [Fact]
    public void PageFaultHandlerMapsThePageAndTheInstructionIsRetried()
    {
        var g = Create();
        Unmap(g, Hole);
        var a = new Assembler(64);
        Label faulting = a.CreateLabel(), pf = a.CreateLabel();
        Prologue(a);
        a.mov(rax, Hole + 8);
        a.Label(ref faulting);
        a.mov(__dword_ptr[rax], 0x77);
        a.mov(ebx, __dword_ptr[rax]);
        a.mov(__dword_ptr[Results + 0x40], ebx);
        Out(a, 'K');
        a.hlt();

        a.Label(ref pf);
        a.pop(rcx);                              // error code
        a.mov(__qword_ptr[Results], rcx);
        a.mov(rcx, __qword_ptr[rsp]);
        a.mov(__qword_ptr[Results + 8], rcx);    // RIP of the faulting instruction
        a.add(__qword_ptr[Results + 0x10], 1);
        a.mov(rcx, PteAddress(Hole));
        a.mov(__qword_ptr[rcx], (int)(Hole | 7)); // map it: present, writable, user
        Out(a, 'F');
        a.iretq();

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, faulting, pf);
        SetGate(g, Vectors.PF, at[1]);
        var r = g.Run();

        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal("FK", r.Console);
        Assert.Equal((ulong)PfError.Write, g.Memory.ReadUInt64(Results));   // a supervisor write to a not-present page
        Assert.Equal(at[0], g.Memory.ReadUInt64(Results + 8));
        Assert.Equal(1UL, g.Memory.ReadUInt64(Results + 0x10));             // one fault, then the retry succeeded
        Assert.Equal(Hole + 8, r.Cpu.Cr2);
        Assert.Equal(0x77u, g.Memory.ReadUInt32(Results + 0x40));
        Assert.Equal(0x77u, g.Memory.ReadUInt32(Hole + 8));
    }

    [SkippableFact]
    public void PageFaultHandlerSeesTheFaultingAddressInCr2()
    {
        Skip.IfNot(GuestSupport.HasMovCr, "MOV from CR2 is another helper's work (SystemInstructions.cs on branch misc)");
        var g = Create();
        Unmap(g, Hole);
        var a = new Assembler(64);
        Label pf = a.CreateLabel();
        Prologue(a);
        a.mov(rax, Hole + 0x123);
        a.mov(bl, __byte_ptr[rax]);
        a.hlt();
        a.Label(ref pf);
        a.mov(rcx, cr2);
        a.mov(__qword_ptr[Results], rcx);
        a.mov(rcx, PteAddress(Hole));
        a.mov(__qword_ptr[rcx], (int)(Hole | 7));
        a.add(rsp, 8);
        a.iretq();

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, pf);
        SetGate(g, Vectors.PF, at[0]);
        var r = g.Run();

        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal(Hole + 0x123, g.Memory.ReadUInt64(Results));
    }

    [Fact]
    public void PageFaultWhileDeliveringPageFaultIsDoubleFault()
    {
        var g = Create();
        Unmap(g, Hole);
        Unmap(g, 0x355000);
        g.Memory.WriteUInt64(Tss + 0x24, 0x356000); // IST1: its top page is not mapped
        var a = new Assembler(64);
        Label faulting = a.CreateLabel(), pf = a.CreateLabel(), df = a.CreateLabel();
        Prologue(a);
        a.mov(rax, Hole);
        a.Label(ref faulting);
        a.mov(__qword_ptr[rax], 1);
        a.hlt();
        a.Label(ref pf);
        Exit(a, 0xBAD);
        a.Label(ref df);
        a.mov(__qword_ptr[Results + 0x18], rsp);
        a.pop(rcx);
        a.mov(__qword_ptr[Results], rcx);
        a.pop(rcx);
        a.mov(__qword_ptr[Results + 8], rcx);
        Out(a, 'D');
        Exit(a, 0xDF);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, faulting, pf, df);
        SetGate(g, Vectors.PF, at[1], ist: 1);
        SetGate(g, Vectors.DF, at[2], ist: 2);
        g.Memory.WriteUInt64(Results, 0xFFFF);
        var r = g.Run();

        Assert.Equal(0xDFu, r.ExitValue);
        Assert.Equal("D", r.Console);
        Assert.Equal(0UL, g.Memory.ReadUInt64(Results));           // #DF's error code
        Assert.Equal(at[0], g.Memory.ReadUInt64(Results + 8));     // the instruction that faulted first
        Assert.Equal(Ist2 - 48, g.Memory.ReadUInt64(Results + 0x18)); // six qwords on IST2
        Assert.Equal(0x355FF8UL, r.Cpu.Cr2);                       // the second fault: pushing SS on IST1
    }

    [Fact]
    public void FaultWhileDeliveringDoubleFaultShutsDown()
    {
        var g = Create();
        Unmap(g, Hole);
        Unmap(g, 0x355000);
        g.Memory.WriteUInt64(Tss + 0x24, 0x356000);
        g.Memory.WriteUInt64(Tss + 0x2C, 0x356000); // IST2 as unusable as IST1
        var a = new Assembler(64);
        Label handler = a.CreateLabel();
        Prologue(a);
        a.mov(rax, Hole);
        a.mov(__qword_ptr[rax], 1);
        a.hlt();
        a.Label(ref handler);
        Exit(a, 0xBAD);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, handler);
        SetGate(g, Vectors.PF, at[0], ist: 1);
        SetGate(g, Vectors.DF, at[0], ist: 2);
        var r = g.Run();

        Assert.Equal(CpuExitReason.Shutdown, r.Exit);
        Assert.Null(r.ExitValue);
        Assert.Contains("#DF", r.Cpu.ShutdownReason);
    }

    [Fact]
    public void ExternalInterruptRunsOnTheIstStackAndIretqResumes()
    {
        var g = Create();
        g.Memory.WriteUInt64(Tss + 0x24, Ist1 + 8); // misaligned on purpose: delivery aligns RSP to 16
        var source = new OneShotInterrupt(g.Cpu, 0x30, afterInstructions: 40);
        g.Cpu.Interrupts = source;
        var a = new Assembler(64);
        Label loop = a.CreateLabel(), handler = a.CreateLabel(), loopEnd = a.CreateLabel();
        Prologue(a);
        a.xor(ecx, ecx);
        a.sti();
        a.Label(ref loop);
        a.inc(ecx);
        a.cmp(__dword_ptr[Results + 0x80], 0);
        a.je(loop);
        a.Label(ref loopEnd);
        a.cli();
        a.mov(__qword_ptr[Results + 0x40], rsp);
        a.mov(__qword_ptr[Results + 0x48], rcx);
        Out(a, 'M');
        a.hlt();

        a.Label(ref handler);
        a.mov(__qword_ptr[Results], rsp);
        for (var k = 0; k < 5; k++)
        {
            a.mov(rax, __qword_ptr[rsp + 8 * k]);
            a.mov(__qword_ptr[Results + 8 + (ulong)(8 * k)], rax);
        }
        a.mov(__dword_ptr[Results + 0x80], 1);
        Out(a, 'I');
        a.iretq();

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, loop, handler, loopEnd);
        SetGate(g, 0x30, at[1], ist: 1);
        var r = g.Run();

        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal("IM", r.Console);
        Assert.Equal(1, source.Acknowledged);
        var m = g.Memory;
        Assert.Equal(Ist1 - 40, m.ReadUInt64(Results));               // aligned IST1 top, five qwords
        var rip = m.ReadUInt64(Results + 8);
        Assert.InRange(rip, at[0], at[2]);                             // taken inside the loop
        Assert.Equal((ulong)Code0, m.ReadUInt64(Results + 0x10));
        Assert.NotEqual(0UL, m.ReadUInt64(Results + 0x18) & RFlags.IF); // pushed RFLAGS had IF set
        Assert.Equal(BootStack, m.ReadUInt64(Results + 0x20));        // interrupted RSP
        Assert.Equal((ulong)Data0, m.ReadUInt64(Results + 0x28));
        Assert.Equal(BootStack, m.ReadUInt64(Results + 0x40));        // IRETQ restored RSP
        Assert.True(m.ReadUInt64(Results + 0x48) >= 1);                // and the loop went on to see the flag
    }

    [Fact]
    public void InterruptFromRing3LoadsNullSsAndIretqReturnsToRing3()
    {
        var g = Create();
        var a = new Assembler(64);
        Label ring3 = a.CreateLabel(), handler = a.CreateLabel(), afterInt = a.CreateLabel();
        Prologue(a);
        a.push(Data3);
        a.push((int)Stack3);
        a.push(0x3002);
        a.push(Code3);
        a.lea(rax, __[ring3]);
        a.push(rax);
        a.iretq();

        a.Label(ref ring3);
        a.@int(0x40);
        a.Label(ref afterInt);
        a.mov(__qword_ptr[Results + 0x40], rsp);
        a.mov(eax, cs);
        a.mov(__dword_ptr[Results + 0x48], eax);
        a.mov(eax, ss);
        a.mov(__dword_ptr[Results + 0x4C], eax);
        Exit(a, 0x64);

        a.Label(ref handler);
        a.mov(__qword_ptr[Results], rsp);
        a.mov(eax, ss);
        a.mov(__dword_ptr[Results + 8], eax);
        for (var k = 0; k < 5; k++)
        {
            a.mov(rax, __qword_ptr[rsp + 8 * k]);
            a.mov(__qword_ptr[Results + 0x10 + (ulong)(8 * k)], rax);
        }
        a.iretq();

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, handler, afterInt);
        SetGate(g, 0x40, at[0], dpl: 3);
        var r = g.Run();

        Assert.True(r.ExitValue == 0x64u, $"{r.Exit} {r.Cpu} {r.Cpu.LastUnimplemented} {r.Cpu.ShutdownReason}");
        var m = g.Memory;
        Assert.Equal(Rsp0 - 40, m.ReadUInt64(Results));
        Assert.Equal(0u, m.ReadUInt32(Results + 8));            // SS: null selector, RPL = new CPL 0
        Assert.Equal(at[1], m.ReadUInt64(Results + 0x10));       // RIP after INT
        Assert.Equal((ulong)Code3, m.ReadUInt64(Results + 0x18));
        Assert.Equal(Stack3, m.ReadUInt64(Results + 0x28));
        Assert.Equal((ulong)Data3, m.ReadUInt64(Results + 0x30));
        Assert.Equal(Stack3, m.ReadUInt64(Results + 0x40));
        Assert.Equal(Code3, m.ReadUInt32(Results + 0x48));
        Assert.Equal(Data3, m.ReadUInt32(Results + 0x4C));
        Assert.Equal(3, r.Cpu.Cpl);
    }
    [Fact]
    public void SixtyFourBitCallGateFromRing3AndRetfqBack()
    {
        var g = Create();
        const ushort gate = 0x38;
        g.Memory.WriteUInt16(GdtPtr, 0x47);
        var a = new Assembler(64);
        Label ring3 = a.CreateLabel(), func = a.CreateLabel(), afterCall = a.CreateLabel();
        Prologue(a);
        a.push(Data3);
        a.push((int)Stack3);
        a.push(0x3002);
        a.push(Code3);
        a.lea(rax, __[ring3]);
        a.push(rax);
        a.iretq();

        a.Label(ref ring3);
        a.call(__fword_ptr[0x8F40]);       // the offset in the pointer is ignored: the gate has the entry
        a.Label(ref afterCall);
        a.mov(__qword_ptr[Results + 0x40], rsp);
        a.mov(eax, cs);
        a.mov(__dword_ptr[Results + 0x48], eax);
        a.mov(eax, ss);
        a.mov(__dword_ptr[Results + 0x4C], eax);
        Exit(a, 0xCA64);

        a.Label(ref func);
        a.mov(__qword_ptr[Results], rsp);
        a.mov(eax, ss);
        a.mov(__dword_ptr[Results + 8], eax);
        for (var k = 0; k < 4; k++)
        {
            a.mov(rax, __qword_ptr[rsp + 8 * k]);
            a.mov(__qword_ptr[Results + 0x10 + (ulong)(8 * k)], rax);
        }
        a.db(0x48, 0xCB);                  // RETFQ: RIP, CS, then RSP and SS of ring 3

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, func, afterCall);
        g.Write128(Gdt + gate, GuestTables.Gate64(Code0, at[0], GuestTables.CallGate32, dpl: 3));
        g.Memory.WriteUInt32(0x8F40, 0);
        g.Memory.WriteUInt16(0x8F44, gate | 3);
        var r = g.Run();

        Assert.True(r.ExitValue == 0xCA64u, $"{r.Exit} {r.Cpu} {r.Cpu.ShutdownReason}");
        var m = g.Memory;
        Assert.Equal(Rsp0 - 32, m.ReadUInt64(Results));       // RSP0 from the TSS, four qwords
        Assert.Equal(0u, m.ReadUInt32(Results + 8));            // null SS in ring 0
        Assert.Equal(at[1], m.ReadUInt64(Results + 0x10));      // return RIP
        Assert.Equal((ulong)Code3, m.ReadUInt64(Results + 0x18));
        Assert.Equal(Stack3, m.ReadUInt64(Results + 0x20));
        Assert.Equal((ulong)Data3, m.ReadUInt64(Results + 0x28));
        Assert.Equal(Stack3, m.ReadUInt64(Results + 0x40));
        Assert.Equal(Code3, m.ReadUInt32(Results + 0x48));
        Assert.Equal(Data3, m.ReadUInt32(Results + 0x4C));
    }
}
