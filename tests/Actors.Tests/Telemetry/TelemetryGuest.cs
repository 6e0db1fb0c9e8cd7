using Actorvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>
/// The telemetry tests' guest: it routes COM1's IRQ 4 through the IOAPIC to vector 40h on CPU 0, enables the
/// UART's THR-empty interrupt, takes it once (its handler reads IIR and EOIs the LAPIC), then makes a known
/// number of scratch-register accesses, prints "IRQ\n" and halts with interrupts off.
/// Its port accesses: 2 to the 8259s (mask writes); to the UART, MCR, IER on, 1 IIR read, IER off,
/// <see cref="ScratchWrites"/> SCR writes, <see cref="ScratchReads"/> SCR reads and 4 data writes.
/// </summary>
internal static class TelemetryGuest
{
    public const int Vector = 0x40;
    public const int ScratchWrites = 100, ScratchReads = 50;
    public const int UartWrites = 3 + ScratchWrites + 4, UartReads = 1 + ScratchReads;
    public const int PicWrites = 2;
    public const int IoApicWrites = 4;

    public static byte[] Kernel()
    {
        const ulong handler = 0x201000, idt = 0x210000, idtr = 0x220000, counter = 0x220100;
        var main = GuestImages.Assemble(64, 0x200000, a =>
        {
            GuestImages.RouteIoApicPin64(a, pin: 4, Vector, handler, idt, idtr);
            a.mov(dx, GuestImages.Com1 + 4);              // MCR: OUT2
            a.mov(al, 0x08);
            a.@out(dx, al);
            a.mov(dx, GuestImages.Com1 + 1);              // IER: THR empty, so the line rises at once
            a.mov(al, 0x02);
            a.@out(dx, al);
            var wait = a.CreateLabel();
            a.sti();
            a.Label(ref wait);
            a.hlt();
            a.cmp(__dword_ptr[counter], 0);
            a.je(wait);
            a.cli();
            a.mov(dx, GuestImages.Com1 + 1);              // IER off
            a.mov(al, 0);
            a.@out(dx, al);
            a.mov(dx, GuestImages.Com1 + 7);              // the scratch register, written and read a known number of times
            a.mov(ecx, ScratchWrites);
            var writes = a.CreateLabel();
            a.Label(ref writes);
            a.mov(al, cl);
            a.@out(dx, al);
            a.dec(ecx);
            a.jnz(writes);
            a.mov(ecx, ScratchReads);
            var reads = a.CreateLabel();
            a.Label(ref reads);
            a.@in(al, dx);
            a.dec(ecx);
            a.jnz(reads);
            a.mov(dx, GuestImages.Com1);
            foreach (var c in "IRQ\n")
            {
                a.mov(al, (byte)c);
                a.@out(dx, al);
            }
            a.hlt();
        });
        var isr = GuestImages.UartThreIsr64(handler, counter);
        return GuestImages.Elf64(0x200000,
            new ElfSegmentSpec(0x200000, 0x200000, main, (ulong)main.Length),
            new ElfSegmentSpec(handler, handler, isr, (ulong)isr.Length));
    }
}

/// <summary>A guest that never ends: it writes and reads COM1's scratch register in a loop (exits at a steady rate).</summary>
internal static class BusyGuest
{
    public static byte[] Kernel()
    {
        var code = GuestImages.Assemble(64, 0x200000, a =>
        {
            var loop = a.CreateLabel();
            a.mov(dx, GuestImages.Com1 + 7);
            a.Label(ref loop);
            a.@out(dx, al);
            a.@in(al, dx);
            a.inc(al);
            a.jmp(loop);
        });
        return GuestImages.Elf64(0x200000, new ElfSegmentSpec(0x200000, 0x200000, code, (ulong)code.Length));
    }
}

/// <summary>The telemetry switches are process-wide: the tests that set them run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TelemetryCollection
{
    public const string Name = "Telemetry";
}
