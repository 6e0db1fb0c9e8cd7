using Actorvisor.Kernel.Cpu;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Actorvisor.Kernel.Tests.Cpu.Protected32;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Which event the CPU takes when several wait at one instruction boundary (SDM Vol. 3A 6.9, Table 6-2: NMI
/// before maskable interrupts), and the STI shadow delaying both kinds' recognition by one instruction.
/// </summary>
public class EventPriorityTests
{
    private const ulong Count = Results, Log = Results + 8;

    /// <summary>Each handler appends its letter to the log and returns.</summary>
    private static void Handler(Assembler a, ref Label label, char letter)
    {
        a.Label(ref label);
        a.mov(eax, __dword_ptr[Count]);
        a.mov(__byte_ptr[eax + (int)Log], (byte)letter);
        a.inc(__dword_ptr[Count]);
        a.iretd();
    }

    [Fact]
    public void NmiGoesBeforeAPendingInterruptAndTheInterruptFollowsTheIret()
    {
        NmiPort? port = null;
        var g = Create(p => port = new NmiPort(p));
        port!.Cpu = g.Cpu;
        var source = new OneShotInterrupt(g.Cpu, 0x40);   // pending from the start, held back by IF = 0
        g.Cpu.Interrupts = source;
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), nmi = a.CreateLabel(), intr = a.CreateLabel(), wait = a.CreateLabel();
        Prologue(a, ref reloaded);
        a.mov(dx, NmiPort.Port);
        a.sti();                                        // shadow: nothing is taken before the OUT below
        a.@out(dx, al);                                 // the NMI; now both wait at the next boundary
        a.Label(ref wait);
        a.cmp(__dword_ptr[Count], 2);
        a.jne(wait);
        Exit(a, 0x7);
        Handler(a, ref nmi, 'N');
        Handler(a, ref intr, 'I');
        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, nmi, intr);
        SetFarPointer(g, at[0]);
        SetGate(g, Vectors.NMI, at[1]);
        SetGate(g, 0x40, at[2]);
        var r = g.Run(10_000);

        Assert.Equal(0x7u, r.ExitValue);
        // NMI first; its interrupt gate cleared IF, so the interrupt waited for the NMI handler's IRET.
        Assert.Equal(((byte)'N', (byte)'I'), (g.Memory.ReadByte(Log), g.Memory.ReadByte(Log + 1)));
        Assert.Equal(1, source.Acknowledged);
    }

    /// <summary>
    /// A fault and an NMI raised by the same instruction: the fault is delivered first (the instruction ends
    /// in it), and the NMI is then recognised at the next boundary, before the fault handler's first
    /// instruction (bhyve's order exception → NMI → interrupt).
    /// </summary>
    [Fact]
    public void AFaultIsDeliveredBeforeAnNmiTheSameInstructionRaised()
    {
        NmiPort? port = null;
        var g = Create(p => port = new NmiPort(p));
        port!.Cpu = g.Cpu;
        const ulong NmiFrameEip = Results + 0x40, GpFrameEip = Results + 0x44;
        // Selector 30h: a one-byte data segment, so the second byte of a REP OUTSB faults after the first went out.
        g.Memory.WriteUInt64(Gdt + 0x30, GuestTables.Segment((uint)Results + 0x100, 0, 0x92, 0x4));
        var a = new Assembler(32);
        Label reloaded = a.CreateLabel(), nmi = a.CreateLabel(), gp = a.CreateLabel(), outs = a.CreateLabel();
        Prologue(a, ref reloaded);
        a.mov(ax, 0x30);
        a.mov(fs, ax);
        a.mov(dx, NmiPort.Port);
        a.xor(esi, esi);
        a.mov(ecx, 2);
        a.Label(ref outs);
        a.db(0x64, 0xF3, 0x6E);                         // fs rep outsb: byte 0 raises the NMI, byte 1 is #GP(0)
        Exit(a, 0x9);

        a.Label(ref nmi);
        a.mov(eax, __dword_ptr[esp]);
        a.mov(__dword_ptr[NmiFrameEip], eax);
        a.mov(eax, __dword_ptr[Count]);
        a.mov(__byte_ptr[eax + (int)Log], (byte)'N');
        a.inc(__dword_ptr[Count]);
        a.iretd();

        a.Label(ref gp);
        a.mov(eax, __dword_ptr[esp + 4]);               // above the error code
        a.mov(__dword_ptr[GpFrameEip], eax);
        a.mov(eax, __dword_ptr[Count]);
        a.mov(__byte_ptr[eax + (int)Log], (byte)'G');
        a.inc(__dword_ptr[Count]);
        a.add(__dword_ptr[esp + 4], 3);                 // resume after the REP OUTSB
        a.add(esp, 4);
        a.iretd();
        var at = g.Load(a, GuestKit.GuestRunner.DefaultLoad, reloaded, nmi, gp, outs);
        SetFarPointer(g, at[0]);
        SetGate(g, Vectors.NMI, at[1]);
        SetGate(g, Vectors.GP, at[2]);
        var r = g.Run(10_000);

        Assert.Equal(0x9u, r.ExitValue);
        Assert.Equal((uint)at[3], g.Memory.ReadUInt32(GpFrameEip));   // the fault belongs to the REP OUTSB
        Assert.Equal((uint)at[2], g.Memory.ReadUInt32(NmiFrameEip));  // the NMI interrupted the #GP handler's entry
        Assert.Equal(((byte)'N', (byte)'G'), (g.Memory.ReadByte(Log), g.Memory.ReadByte(Log + 1)));
    }
}
