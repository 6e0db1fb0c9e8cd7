using Actorvisor.Kernel.Cpu;
using Iced.Intel;
using static Actorvisor.Kernel.Tests.Cpu.Protected32;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Ring 3 ↔ ring 0 in 32-bit protected mode: interrupts through the IDT with the TSS stack switch and IRET
/// back (SDM 6.12.1), the gate-DPL check on INT n (6.12.1.1), and call gates with parameter copy and RET
/// to the outer level (5.8.5, 5.8.6).
/// </summary>
public class PrivilegeTransitionTests
{
    [Fact]
    public void InterruptFromRing3SwitchesToTssStackAndIretReturnsToRing3()
    {
        var g = Create();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), ring3 = a.CreateLabel(), afterInt = a.CreateLabel(), handler = a.CreateLabel();
        Prologue(a, ref reloaded);
        EnterRing3(a);

        a.Label(ref ring3);
        a.mov(ax, Data3);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.@int(0x40);
        a.Label(ref afterInt);
        a.mov(__dword_ptr[Results + 0x40], esp);
        a.mov(eax, cs);
        a.mov(__dword_ptr[Results + 0x44], eax);
        a.mov(eax, ss);
        a.mov(__dword_ptr[Results + 0x48], eax);
        Out(a, '3');
        Exit(a, 0x33);

        // Ring 0: record the stack pointer and the frame the CPU pushed.
        a.Label(ref handler);
        a.mov(__dword_ptr[Results + 0x00], esp);
        for (var k = 0; k < 5; k++)
        {
            a.mov(eax, __dword_ptr[esp + 4 * k]);
            a.mov(__dword_ptr[Results + 0x10 + (ulong)(4 * k)], eax);
        }
        a.mov(eax, cs);
        a.mov(__dword_ptr[Results + 0x04], eax);
        a.mov(eax, ss);
        a.mov(__dword_ptr[Results + 0x08], eax);
        Out(a, '0');
        a.iretd();

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, afterInt, handler, ring3);
        SetFarPointer(g, at[0]);
        SetRing3Entry(g, at[3]);
        SetGate(g, 0x40, at[2], dpl: 3);
        var r = g.Run();

        Assert.Equal(0x33u, r.ExitValue);
        Assert.Equal("03", r.Console);
        var m = g.Memory;
        // The handler ran in ring 0 on SS0:ESP0 from the TSS, below a five-dword frame.
        Assert.Equal(Stack0 - 20, m.ReadUInt32(Results + 0x00));
        Assert.Equal(Code0, m.ReadUInt32(Results + 0x04));
        Assert.Equal(Data0, m.ReadUInt32(Results + 0x08));
        // Frame: EIP (after INT), CS, EFLAGS, ESP, SS of ring 3.
        Assert.Equal((uint)at[1], m.ReadUInt32(Results + 0x10));
        Assert.Equal(Code3, m.ReadUInt32(Results + 0x14));
        Assert.Equal(Ring3Flags, m.ReadUInt32(Results + 0x18) & ~(uint)RFlags.Arith);
        Assert.Equal(Stack3, m.ReadUInt32(Results + 0x1C));
        Assert.Equal(Data3, m.ReadUInt32(Results + 0x20));
        // IRET went back to ring 3 with its own stack.
        Assert.Equal(Stack3, m.ReadUInt32(Results + 0x40));
        Assert.Equal(Code3, m.ReadUInt32(Results + 0x44));
        Assert.Equal(Data3, m.ReadUInt32(Results + 0x48));
        Assert.Equal(3, r.Cpu.Cpl);
    }

    [Fact]
    public void IntNFromRing3ThroughDpl0GateRaisesGpWithIdtErrorCode()
    {
        var g = Create();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), intInstr = a.CreateLabel(), gp = a.CreateLabel(), never = a.CreateLabel();
        Prologue(a, ref reloaded);
        EnterRing3(a);
        a.Label(ref intInstr);
        a.@int(0x41);
        Exit(a, 0xBAD);

        a.Label(ref never);
        Out(a, '!');
        a.iretd();

        a.Label(ref gp);
        // IRET to ring 3 nulled DS (a DPL-0 segment), so the handler loads its own.
        a.mov(bx, Data0);
        a.mov(ds, bx);
        a.pop(eax);
        a.mov(__dword_ptr[Results], eax);
        a.mov(eax, __dword_ptr[esp]);
        a.mov(__dword_ptr[Results + 4], eax);
        a.mov(eax, __dword_ptr[esp + 4]);
        a.mov(__dword_ptr[Results + 8], eax);
        Out(a, 'G');
        Exit(a, 0x13);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, intInstr, gp, never);
        SetFarPointer(g, at[0]);
        SetRing3Entry(g, at[1]);
        SetGate(g, 0x41, at[3], dpl: 0);
        SetGate(g, Vectors.GP, at[2], dpl: 0);
        var r = g.Run();

        Assert.True(0x13u == r.ExitValue, $"{r.Exit} [{r.Console}] {r.Cpu} unimpl={r.Cpu.LastUnimplemented}");
        Assert.Equal("G", r.Console);
        // Error code: index = vector, IDT bit set, EXT clear (INT n is the program's own event).
        Assert.Equal(0x41u * 8 + 2, g.Memory.ReadUInt32(Results));
        // A fault: the saved EIP is the INT instruction itself, from ring 3.
        Assert.Equal((uint)at[1], g.Memory.ReadUInt32(Results + 4));
        Assert.Equal(Code3, g.Memory.ReadUInt32(Results + 8));
    }

    [Fact]
    public void CallGateFromRing3CopiesParametersAndRetFarReturnsToRing3()
    {
        var g = Create();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), ring3 = a.CreateLabel(), func = a.CreateLabel(), afterCall = a.CreateLabel();
        Prologue(a, ref reloaded);
        EnterRing3(a);

        a.Label(ref ring3);
        a.mov(ax, Data3);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.push(7);
        a.push(5);
        a.call(CallGate, 0); // the offset is ignored: the gate supplies the entry point
        a.Label(ref afterCall);
        a.mov(__dword_ptr[Results + 0x20], esp);
        a.mov(__dword_ptr[Results + 0x24], eax);
        a.mov(eax, es);
        a.mov(__dword_ptr[Results + 0x28], eax);
        a.mov(eax, ds);
        a.mov(__dword_ptr[Results + 0x2C], eax);
        a.mov(eax, cs);
        a.mov(__dword_ptr[Results + 0x30], eax);
        Exit(a, 0xCA11);

        // Ring 0 on the TSS stack: EIP, CS, two copied parameters, ESP, SS.
        a.Label(ref func);
        a.mov(__dword_ptr[Results + 0x00], esp);
        for (var k = 0; k < 6; k++)
        {
            a.mov(ecx, __dword_ptr[esp + 4 * k]);
            a.mov(__dword_ptr[Results + 0x04 + (ulong)(4 * k)], ecx);
        }
        a.mov(eax, __dword_ptr[esp + 8]);
        a.add(eax, __dword_ptr[esp + 12]);
        // A ring-0 data segment in ES must not survive the return to ring 3.
        a.mov(bx, Data0);
        a.mov(es, bx);
        a.retf(8);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, func, afterCall, ring3);
        SetFarPointer(g, at[0]);
        SetRing3Entry(g, at[3]);
        g.Write64(Gdt + (CallGate & ~7u), GuestTables.Gate(Code0, (uint)at[1], GuestTables.CallGate32, dpl: 3, paramCount: 2));
        var r = g.Run();

        Assert.Equal(0xCA11u, r.ExitValue);
        var m = g.Memory;
        Assert.Equal(Stack0 - 24, m.ReadUInt32(Results + 0x00));
        Assert.Equal((uint)at[2], m.ReadUInt32(Results + 0x04)); // return EIP
        Assert.Equal(Code3, m.ReadUInt32(Results + 0x08));
        Assert.Equal(5u, m.ReadUInt32(Results + 0x0C)); // parameters in the caller's order
        Assert.Equal(7u, m.ReadUInt32(Results + 0x10));
        Assert.Equal(Stack3 - 8, m.ReadUInt32(Results + 0x14)); // caller's ESP, parameters still on it
        Assert.Equal(Data3, m.ReadUInt32(Results + 0x18));
        // RETF 8 released the parameters on both stacks and returned to ring 3.
        Assert.Equal(Stack3, m.ReadUInt32(Results + 0x20));
        Assert.Equal(12u, m.ReadUInt32(Results + 0x24));
        Assert.Equal(0u, m.ReadUInt32(Results + 0x28)); // ES nulled: DPL 0 < CPL 3
        Assert.Equal(Data3, m.ReadUInt32(Results + 0x2C));
        Assert.Equal(Code3, m.ReadUInt32(Results + 0x30));
    }
}
