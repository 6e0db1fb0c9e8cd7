using Actorvisor.Kernel.Boot;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// The 64-bit machine the long-mode delivery tests share: the boot identity map (2 MiB pages) with the
/// 2-4 MiB range remapped through a 4 KiB page table the test can punch holes in, a GDT with ring-0 and
/// ring-3 segments and a 64-bit TSS (RSP0, IST1, IST2), and a 16-byte-gate IDT the test fills.
/// </summary>
internal static class Long64
{
    public const ulong Gdt = 0x8000, GdtPtr = 0x8F00, IdtPtr = 0x8F10, Tss = 0xA000, Idt = 0xB000, Results = 0x9000;
    /// <summary>The 4 KiB page table for 0x200000-0x3FFFFF (boot page directory entry 1 points at it).</summary>
    public const ulong PageTable = 0x20000;
    public const ushort Code0 = 0x08, Data0 = 0x10, Code3 = 0x1B, Data3 = 0x23, TssSel = 0x28;
    public const ulong BootStack = 0x60000, Rsp0 = 0x70000, Ist1 = 0x7F000, Ist2 = 0x7E000, Stack3 = 0x50000;

    public static SystemGuest Create()
    {
        var g = new SystemGuest();
        CpuSetup.EnterLongMode(g.Cpu, GuestKit.GuestRunner.DefaultLoad, BootStack);
        g.Write64(Gdt, 0, GuestTables.Code64(0), GuestTables.Data32(0), GuestTables.Code64(3), GuestTables.Data32(3));
        g.Write128(Gdt + TssSel, GuestTables.Tss64(Tss));
        g.Memory.WriteUInt16(GdtPtr, 7 * 8 - 1);
        g.Memory.WriteUInt64(GdtPtr + 2, Gdt);
        g.Memory.WriteUInt16(IdtPtr, 256 * 16 - 1);
        g.Memory.WriteUInt64(IdtPtr + 2, Idt);
        g.Memory.WriteUInt64(Tss + 4, Rsp0);
        g.Memory.WriteUInt64(Tss + 0x24, Ist1);
        g.Memory.WriteUInt64(Tss + 0x2C, Ist2);
        g.Memory.WriteUInt16(Tss + 0x66, 0x68);
        // Every page user-accessible, so ring-3 code can run anywhere in the identity map.
        const ulong user = 4;
        g.Memory.WriteUInt64(CpuSetup.Pml4Address, g.Memory.ReadUInt64(CpuSetup.Pml4Address) | user);
        for (ulong e = 0; e < 4; e++) g.Memory.WriteUInt64(CpuSetup.PdptAddress + e * 8, g.Memory.ReadUInt64(CpuSetup.PdptAddress + e * 8) | user);
        for (ulong e = 0; e < 4 * 512; e++) g.Memory.WriteUInt64(CpuSetup.PdAddress + e * 8, g.Memory.ReadUInt64(CpuSetup.PdAddress + e * 8) | user);
        for (ulong p = 0; p < 512; p++) g.Memory.WriteUInt64(PageTable + p * 8, (0x200000 + p * 0x1000) | 3 | user);
        g.Memory.WriteUInt64(CpuSetup.PdAddress + 8, PageTable | 3 | user);
        return g;
    }

    /// <summary>Makes the 4 KiB page at <paramref name="address"/> (in 2-4 MiB) not present.</summary>
    public static void Unmap(SystemGuest g, ulong address) => g.Memory.WriteUInt64(PteAddress(address), 0);

    public static ulong PteAddress(ulong address) => PageTable + ((address - 0x200000) >> 12) * 8;

    public static void Prologue(Assembler a)
    {
        a.lgdt(__[GdtPtr]);
        a.lidt(__[IdtPtr]);
        a.mov(ax, Data0);
        a.mov(ds, ax);
        a.mov(ss, ax);
        a.mov(ax, TssSel);
        a.ltr(ax);
    }

    public static void SetGate(SystemGuest g, int vector, ulong handler, int dpl = 0, int ist = 0, bool present = true,
        int type = GuestTables.InterruptGate32) =>
        g.Write128(Idt + (ulong)vector * 16, GuestTables.Gate64(Code0, handler, type, dpl, ist, present));

    /// <summary>Writes a character to the console, keeping RAX and RDX.</summary>
    public static void Out(Assembler a, char c)
    {
        a.push(rax);
        a.push(rdx);
        a.mov(dx, 0x3F8);
        a.mov(al, (byte)c);
        a.@out(dx, al);
        a.pop(rdx);
        a.pop(rax);
    }

    public static void Exit(Assembler a, uint value)
    {
        a.mov(dx, 0xF4);
        a.mov(eax, value);
        a.@out(dx, eax);
    }
}
