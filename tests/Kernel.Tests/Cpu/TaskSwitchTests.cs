using Actorvisor.Kernel.Cpu;
using Iced.Intel;
using static Actorvisor.Kernel.Tests.Cpu.Protected32;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Hardware task switches with 32-bit TSSs (SDM Vol. 3A ch. 7): CALL to a TSS and IRET back through the
/// back link, JMP through a task gate, #DF through a task gate (as 32-bit Linux handles it), and a fault
/// raised by the new task's state, delivered in the new task.
/// </summary>
public class TaskSwitchTests
{
    private const ulong TssB = 0xA100, TssC = 0xA200;
    private const ushort TssBSel = 0x58, TssCSel = 0x60, TaskGateB = 0x68;
    private const uint StackB = 0x68000, StackC = 0x6C000;

    private static SystemGuest CreateWithTasks()
    {
        var g = Create();
        g.Write64(Gdt + TssBSel, GuestTables.Tss32((uint)TssB), GuestTables.Tss32((uint)TssC),
            GuestTables.Gate(TssBSel, 0, GuestTables.TaskGate, dpl: 0));
        g.Memory.WriteUInt16(GdtPtr, (ushort)(TaskGateB + 7));
        return g;
    }

    /// <summary>A ring-0 flat task starting at <paramref name="eip"/> with its own stack.</summary>
    private static void WriteTask(SystemGuest g, ulong tss, ulong eip, uint esp, ushort cs = Code0)
    {
        var m = g.Memory;
        m.WriteUInt32(tss + 0x20, (uint)eip);
        m.WriteUInt32(tss + 0x24, 0x2);
        m.WriteUInt32(tss + 0x38, esp);
        ushort[] segs = [Data0, cs, Data0, Data0, 0, 0]; // ES, CS, SS, DS, FS, GS
        for (var k = 0; k < 6; k++) m.WriteUInt16(tss + 0x48 + (ulong)k * 4, segs[k]);
        m.WriteUInt16(tss + 0x66, 0x68);
    }

    private static byte DescriptorType(SystemGuest g, ushort selector) => (byte)(g.Memory.ReadByte(Gdt + (selector & ~7u) + 5) & 0xF);

    [Fact]
    public void CallToATssRunsTheTaskAndIretReturnsThroughTheBackLink()
    {
        var g = CreateWithTasks();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), taskB = a.CreateLabel();
        Prologue(a, ref reloaded);
        a.mov(ebx, 0x1111);
        a.call(TssBSel, 0);
        a.mov(__dword_ptr[Results], ebx);
        a.str(eax);
        a.mov(__dword_ptr[Results + 4], eax);
        Exit(a, 0x7A5C);

        a.Label(ref taskB);
        a.mov(ebx, 0x2222);
        a.str(eax);
        a.mov(__dword_ptr[Results + 8], eax);
        a.mov(eax, __dword_ptr[TssB]);
        a.mov(__dword_ptr[Results + 12], eax);
        Out(a, 'B');
        a.iretd();                   // NT is set: return to the calling task

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, taskB);
        SetFarPointer(g, at[0]);
        WriteTask(g, TssB, at[1], StackB);
        var r = g.Run(10_000);

        Assert.True(r.ExitValue == 0x7A5C, $"{r.Exit} {r.Cpu} {r.Cpu.ShutdownReason}");
        Assert.Equal("B", r.Console);
        var m = g.Memory;
        Assert.Equal(0x1111u, m.ReadUInt32(Results));        // task A's registers came back from its TSS
        Assert.Equal(TssSel, m.ReadUInt32(Results + 4));
        Assert.Equal(TssBSel, m.ReadUInt32(Results + 8));
        Assert.Equal(TssSel, m.ReadUInt32(Results + 12));    // B's back link named A
        Assert.Equal(0x2222u, m.ReadUInt32(TssB + 0x34));     // B's EBX saved when it left
        Assert.Equal(0xB, DescriptorType(g, TssSel));         // A busy again
        Assert.Equal(0x9, DescriptorType(g, TssBSel));        // B available
        Assert.NotEqual(0UL, r.Cpu.Cr0 & Cr0.TS);
        Assert.Equal(0UL, r.Cpu.GetFlags() & RFlags.NT);
    }

    [Fact]
    public void JmpThroughATaskGateLeavesTheOldTaskWithoutABackLink()
    {
        var g = CreateWithTasks();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), taskB = a.CreateLabel();
        Prologue(a, ref reloaded);
        a.mov(ebx, 0x1111);
        a.jmp(TaskGateB, 0);
        Exit(a, 0xBAD);
        a.Label(ref taskB);
        Exit(a, 0x3B);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, taskB);
        SetFarPointer(g, at[0]);
        WriteTask(g, TssB, at[1], StackB);
        var r = g.Run(10_000);

        Assert.Equal(0x3Bu, r.ExitValue);
        Assert.Equal(TssBSel, r.Cpu.Tr.Selector);
        Assert.Equal(0x9, DescriptorType(g, TssSel));
        Assert.Equal(0xB, DescriptorType(g, TssBSel));
        Assert.Equal(0u, g.Memory.ReadUInt32(TssB));            // no back link
        Assert.Equal(0x1111u, g.Memory.ReadUInt32(Tss + 0x34)); // A's EBX saved in A's TSS
        Assert.Equal(0UL, r.Cpu.GetFlags() & RFlags.NT);
        Assert.Equal(StackB, (uint)r.Cpu.Gprs[Gpr.RSP]);
    }

    [Fact]
    public void DoubleFaultThroughATaskGateRunsOnTheTasksOwnStack()
    {
        var g = CreateWithTasks();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), faulting = a.CreateLabel(), taskC = a.CreateLabel();
        Prologue(a, ref reloaded);
        a.mov(esp, 0x1000);          // a wrecked stack, as in a kernel stack overflow
        a.mov(ebx, 0x1238);
        a.Label(ref faulting);
        a.mov(ds, ebx);              // #GP, whose gate is missing: #NP while delivering it, so #DF
        Exit(a, 0xBAD);

        a.Label(ref taskC);
        a.pop(eax);
        a.mov(__dword_ptr[Results], eax);
        a.mov(__dword_ptr[Results + 4], esp);
        a.mov(eax, __dword_ptr[TssC]);
        a.mov(__dword_ptr[Results + 8], eax);
        a.mov(eax, __dword_ptr[Tss + 0x20]);
        a.mov(__dword_ptr[Results + 12], eax);
        Exit(a, 0xDF);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, faulting, taskC);
        SetFarPointer(g, at[0]);
        WriteTask(g, TssC, at[2], StackC);
        SetGate(g, Vectors.GP, at[2], present: false);
        g.Write64(Idt + Vectors.DF * 8, GuestTables.Gate(TssCSel, 0, GuestTables.TaskGate, dpl: 0));
        g.Memory.WriteUInt32(Results, 0xFFFF_FFFF);
        var r = g.Run(10_000);

        Assert.True(r.ExitValue == 0xDF, $"{r.Exit} {r.Cpu} {r.Cpu.ShutdownReason}");
        var m = g.Memory;
        Assert.Equal(0u, m.ReadUInt32(Results));              // #DF error code, pushed on task C's stack
        Assert.Equal(StackC, m.ReadUInt32(Results + 4));
        Assert.Equal(TssSel, m.ReadUInt32(Results + 8));      // nested: back link to the faulting task
        Assert.Equal((uint)at[1], m.ReadUInt32(Results + 12)); // which resumes at the faulting instruction
        Assert.NotEqual(0UL, r.Cpu.GetFlags() & RFlags.NT);
    }

    [Fact]
    public void BadCodeSegmentInTheNewTaskFaultsInTheNewTask()
    {
        var g = CreateWithTasks();
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), taskB = a.CreateLabel(), ts = a.CreateLabel();
        Prologue(a, ref reloaded);
        a.call(TssBSel, 0);
        Exit(a, 0xBAD);
        a.Label(ref taskB);
        Exit(a, 0xBAD2);
        a.Label(ref ts);
        a.pop(eax);
        a.mov(__dword_ptr[Results], eax);
        a.pop(eax);
        a.mov(__dword_ptr[Results + 4], eax);
        a.str(eax);
        a.mov(__dword_ptr[Results + 8], eax);
        Exit(a, 0x75);

        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, taskB, ts);
        SetFarPointer(g, at[0]);
        WriteTask(g, TssB, at[1], StackB, cs: Data0); // CS names a data segment
        SetGate(g, Vectors.TS, at[2]);
        var r = g.Run(10_000);

        Assert.True(r.ExitValue == 0x75, $"{r.Exit} {r.Cpu} {r.Cpu.ShutdownReason}");
        Assert.Equal(Data0, g.Memory.ReadUInt32(Results));      // #TS(CS selector)
        Assert.Equal((uint)at[1], g.Memory.ReadUInt32(Results + 4)); // at the new task's first instruction
        Assert.Equal(TssBSel, g.Memory.ReadUInt32(Results + 8)); // the switch itself completed
    }
}
