using Actorvisor.Kernel.Boot;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// The 32-bit protected-mode machine the ring and exception tests share: a GDT with ring-0 and ring-3 code
/// and data, a TSS whose SS0:ESP0 is <see cref="Stack0"/>, an IDT the test fills, and a prologue that loads
/// them (LGDT, LIDT, far JMP to reload CS, data segments, LTR).
/// </summary>
internal static class Protected32
{
    public const ulong Gdt = 0x8000, GdtPtr = 0x8F00, IdtPtr = 0x8F10, FarPtr = 0x8F20, Ring3Entry = 0x8F30, Tss = 0xA000, Idt = 0xB000;
    public const ulong Results = 0x9000;
    public const ushort Code0 = 0x08, Data0 = 0x10, Code3 = 0x1B, Data3 = 0x23, TssSel = 0x28, CallGate = 0x33;
    public const ushort NotPresentData = 0x38, ExecuteOnlyCode = 0x40, NotPresentStack = 0x48, Data3Plain = 0x50;
    public const uint BootStack = 0x60000, Stack0 = 0x70000, Stack3 = 0x50000;
    public const uint Ring3Flags = 0x3002; // IOPL 3 so ring 3 may write the console and exit ports

    public static readonly ulong[] GdtEntries =
    [
        0,
        GuestTables.Code32(0),                    // 0x08
        GuestTables.Data32(0),                    // 0x10
        GuestTables.Code32(3),                    // 0x18
        GuestTables.Data32(3),                    // 0x20
        GuestTables.Tss32((uint)Tss),             // 0x28
        0,                                        // 0x30: call gate, written by the test that needs it
        GuestTables.Data32(0, present: false),    // 0x38
        GuestTables.Segment(0, 0xFFFFF, 0x98, 0xC), // 0x40: execute-only code
        GuestTables.Data32(0, present: false),    // 0x48
        GuestTables.Data32(3),                    // 0x50
    ];

    public static SystemGuest Create(Func<GuestKit.TestPlatform, Actorvisor.Kernel.Cpu.ICpuPlatform>? wrapPlatform = null)
    {
        var g = new SystemGuest(wrapPlatform: wrapPlatform);
        CpuSetup.EnterFlatProtectedMode(g.Cpu, (uint)GuestKit.GuestRunner.DefaultLoad, BootStack);
        g.Write64(Gdt, GdtEntries);
        g.Memory.WriteUInt16(GdtPtr, (ushort)(GdtEntries.Length * 8 - 1));
        g.Memory.WriteUInt32(GdtPtr + 2, (uint)Gdt);
        g.Memory.WriteUInt16(IdtPtr, 256 * 8 - 1);
        g.Memory.WriteUInt32(IdtPtr + 2, (uint)Idt);
        g.Memory.WriteUInt32(Tss + 4, Stack0); // ESP0
        g.Memory.WriteUInt32(Tss + 8, Data0);  // SS0
        g.Memory.WriteUInt16(Tss + 0x66, 0x68); // no I/O bitmap
        return g;
    }

    /// <summary>Loads the tables; the far jump's target (<paramref name="reloaded"/>) goes into <see cref="FarPtr"/> after assembly.</summary>
    public static void Prologue(Assembler a, ref Label reloaded)
    {
        a.lgdt(__[GdtPtr]);
        a.lidt(__[IdtPtr]);
        a.jmp(__fword_ptr[FarPtr]);
        a.Label(ref reloaded);
        a.mov(ax, Data0);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.mov(ss, ax);
        a.mov(esp, BootStack);
        a.mov(ax, TssSel);
        a.ltr(ax);
    }

    public static void SetFarPointer(SystemGuest g, ulong target, ushort selector = Code0)
    {
        g.Memory.WriteUInt32(FarPtr, (uint)target);
        g.Memory.WriteUInt16(FarPtr + 4, selector);
    }

    /// <summary>
    /// IRETD to ring 3 on <see cref="Stack3"/>, at the address the test stores in <see cref="Ring3Entry"/>
    /// once the program is assembled (32-bit code cannot take a label's address before that).
    /// </summary>
    public static void EnterRing3(Assembler a)
    {
        a.push(Data3);
        a.push(Stack3);
        a.push(Ring3Flags);
        a.push(Code3);
        a.push(__dword_ptr[Ring3Entry]);
        a.iretd();
    }

    public static void SetRing3Entry(SystemGuest g, ulong entry) => g.Memory.WriteUInt32(Ring3Entry, (uint)entry);

    public static void SetGate(SystemGuest g, int vector, ulong handler, int dpl = 0, int type = GuestTables.InterruptGate32, bool present = true) =>
        g.Write64(Idt + (ulong)vector * 8, GuestTables.Gate(Code0, (uint)handler, type, dpl, present: present));

    public static void Out(Assembler a, char c)
    {
        a.mov(dx, 0x3F8);
        a.mov(al, (byte)c);
        a.@out(dx, al);
    }

    public static void Exit(Assembler a, uint value)
    {
        a.mov(dx, 0xF4);
        a.mov(eax, value);
        a.@out(dx, eax);
    }
}
