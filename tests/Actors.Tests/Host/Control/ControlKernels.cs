using Actorvisor.TestSupport;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Host.Control;

/// <summary>Small 64-bit guests for the lifecycle and control tests (no Linux boots).</summary>
public static class ControlKernels
{
    public const ulong Main = 0x200000, NmiHandler = 0x201000, IrqHandler = 0x201100, Idt = 0x210000, Idtr = 0x220000;
    public const int IrqGsi = 5;
    public const byte IrqVector = 0x40;
    public const ushort Pm1Status = 0x600, Pm1Control = 0x604;

    /// <summary>
    /// Prints the low byte of R12 (first 'a') to COM1 again and again, with a short delay between; an NMI prints
    /// 'N', an interrupt on GSI 5 (IOAPIC, vector 40h, edge) prints 'I'. So a test sees it run and stop, sees
    /// a register change in what it prints, and sees injected interrupts reach its handlers.
    /// </summary>
    public static byte[] Printer(int delay = 20000)
    {
        var main = GuestImages.Assemble(64, Main, a =>
        {
            GuestImages.InstallGate64(a, Idt, 2, NmiHandler);
            GuestImages.RouteIoApicPin64(a, IrqGsi, IrqVector, IrqHandler, Idt, Idtr);
            a.mov(r12, 'a');
            a.sti();
            var loop = a.CreateLabel();
            var pause = a.CreateLabel();
            a.Label(ref loop);
            Print(a, () => a.mov(al, r12b));
            a.mov(ecx, delay);
            a.Label(ref pause);
            a.pause();
            a.dec(ecx);
            a.jnz(pause);
            a.jmp(loop);
        });
        var nmi = GuestImages.Assemble(64, NmiHandler, a =>
        {
            a.push(rax);
            a.push(rdx);
            Print(a, () => a.mov(al, (byte)'N'));
            a.pop(rdx);
            a.pop(rax);
            a.iretq();
        });
        var irq = GuestImages.Assemble(64, IrqHandler, a =>
        {
            a.push(rax);
            a.push(rdx);
            Print(a, () => a.mov(al, (byte)'I'));
            a.mov(rax, 0xFEE00000UL);
            a.mov(__dword_ptr[rax + 0xB0], 0);                 // LAPIC EOI
            a.pop(rdx);
            a.pop(rax);
            a.iretq();
        });
        return GuestImages.Elf64(Main,
            new ElfSegmentSpec(Main, Main, main, (ulong)main.Length),
            new ElfSegmentSpec(NmiHandler, NmiHandler, nmi, (ulong)nmi.Length),
            new ElfSegmentSpec(IrqHandler, IrqHandler, irq, (ulong)irq.Length));
    }

    /// <summary>
    /// Prints "ready\n", then polls PM1 status for PWRBTN_STS; when the button is pressed it clears the bit and
    /// powers off through PM1a_CNT (SLP_TYP S5 | SLP_EN), as an OS's power-button handler ends in. With
    /// <paramref name="listens"/> false it only spins: the button changes nothing.
    /// </summary>
    public static byte[] PowerButtonGuest(bool listens)
    {
        var code = GuestImages.Assemble(64, Main, a =>
        {
            foreach (var c in "ready\n") Print(a, () => a.mov(al, (byte)c));
            var poll = a.CreateLabel();
            a.Label(ref poll);
            a.pause();
            if (listens)
            {
                a.mov(dx, Pm1Status);
                a.@in(ax, dx);
                a.test(ax, 1 << 8);                           // PWRBTN_STS
                a.jz(poll);
                a.mov(ax, 1 << 8);
                a.@out(dx, ax);                               // write 1 to clear
                foreach (var c in "button\n") Print(a, () => a.mov(al, (byte)c));
                a.mov(dx, Pm1Control);
                a.mov(ax, (ushort)((Actorvisor.Kernel.Boot.PlatformDescription.DefaultS5SleepType << 10) | (1 << 13)));
                a.@out(dx, ax);
                a.cli();
                a.hlt();
            }
            a.jmp(poll);
        });
        return GuestImages.Elf64(Main, new ElfSegmentSpec(Main, Main, code, (ulong)code.Length));
    }

    /// <summary>Polled COM1 output of the byte <paramref name="load"/> puts in AL (waits for THR empty first).</summary>
    private static void Print(Assembler a, Action load)
    {
        var wait = a.CreateLabel();
        a.mov(dx, GuestImages.Com1Lsr);
        a.Label(ref wait);
        a.@in(al, dx);
        a.test(al, GuestImages.LsrThrEmpty);
        a.jz(wait);
        load();
        a.mov(dx, GuestImages.Com1);
        a.@out(dx, al);
    }
}

/// <summary>A console the guest writes while the test reads it (the UART actor writes from its own thread).</summary>
public sealed class ConsoleCapture : Stream
{
    private readonly MemoryStream _bytes = new();

    public string Text
    {
        get { lock (_bytes) return System.Text.Encoding.ASCII.GetString(_bytes.ToArray()); }
    }

    public int Length32
    {
        get { lock (_bytes) return (int)_bytes.Length; }
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        lock (_bytes) _bytes.Write(buffer, offset, count);
    }

    public override void Flush() { }
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Length32;
    public override long Position { get => Length32; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
