using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Actorvisor.Host;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Deterministic;

/// <summary>
/// The deterministic schedule end to end (`actorvisor run --deterministic`): a 64-bit guest programs the PIT
/// for a 10 ms periodic IRQ 0 through the 8259, waits in HLT and prints the TSC in each handler. Time is the
/// instruction count, so two runs must print the same TSC values and the same digest, and the interrupts
/// must be exactly one PIT period apart in that time.
/// </summary>
public partial class DeterministicRunTests
{
    private const ulong Origin = 0x200000;
    private const ulong Idt = Origin + 0x2000;
    internal const int Ticks = 6;
    private const byte Vector = 0x20;
    /// <summary>PIT counts for 10 ms at 1.193182 MHz.</summary>
    private const ushort PitCount = 11932;

    internal static byte[] Kernel()
    {
        var code = GuestImages.Assemble(64, Origin, a =>
        {
            var handler = a.CreateLabel();
            var wait = a.CreateLabel();
            var hexDigit = a.CreateLabel();
            var printHex = a.CreateLabel();
            // IDT entry for the PIC's IRQ 0: a 64-bit interrupt gate to `handler`, code selector 0x08.
            a.lea(rax, __[handler]);
            a.mov(rdi, Idt + Vector * 16);
            a.mov(__word_ptr[rdi], ax);
            a.mov(__word_ptr[rdi + 2], 0x08);
            a.mov(__word_ptr[rdi + 4], 0x8E00);
            a.shr(rax, 16);
            a.mov(__word_ptr[rdi + 6], ax);
            a.shr(rax, 16);
            a.mov(__dword_ptr[rdi + 8], eax);
            a.mov(__dword_ptr[rdi + 12], 0);
            // IDTR (limit, base) just below the table.
            a.mov(rdi, Idt - 16);
            a.mov(__word_ptr[rdi], 256 * 16 - 1);
            a.mov(rax, Idt);
            a.mov(__qword_ptr[rdi + 2], rax);
            a.lidt(__[rdi]);
            // 8259 master: ICW1 (edge, cascade, ICW4), ICW2 vector base 0x20, ICW3 slave on IR2, ICW4 8086 mode; only IRQ 0 unmasked.
            foreach (var (port, value) in new (byte, byte)[] { (0x20, 0x11), (0x21, Vector), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFE), (0xA1, 0xFF) })
            {
                a.mov(al, value);
                a.@out(port, al);
            }
            // PIT counter 0, lo/hi, mode 2 (rate generator), binary.
            a.mov(al, 0x34);
            a.@out(0x43, al);
            a.mov(al, (byte)(PitCount & 0xFF));
            a.@out(0x40, al);
            a.mov(al, (byte)(PitCount >> 8));
            a.@out(0x40, al);
            a.xor(r15d, r15d);
            a.sti();
            a.Label(ref wait);
            a.hlt();
            a.cmp(r15d, Ticks);
            a.jb(wait);
            a.cli();
            a.mov(al, 0);
            a.@out(0xF4, al); // isa-debug-exit: status 1
            a.hlt();

            // Handler: print "T" and the TSC's low 32 bits in hex, a newline, EOI, count.
            a.Label(ref handler);
            a.rdtsc();
            a.mov(ebx, eax);
            a.mov(dx, GuestImages.Com1);
            a.mov(al, (byte)'T');
            a.@out(dx, al);
            a.call(printHex);
            a.mov(al, (byte)'\n');
            a.@out(dx, al);
            a.mov(al, 0x20);
            a.@out(0x20, al);
            a.inc(r15d);
            a.iretq();

            // Prints EBX as 8 hex digits on COM1 (DX = COM1).
            a.Label(ref printHex);
            a.mov(ecx, 8);
            var next = a.CreateLabel();
            a.Label(ref next);
            a.rol(ebx, 4);
            a.mov(al, bl);
            a.and(al, 0x0F);
            a.call(hexDigit);
            a.dec(ecx);
            a.jnz(next);
            a.ret();

            var letter = a.CreateLabel();
            a.Label(ref hexDigit);
            a.cmp(al, 10);
            a.jae(letter);
            a.add(al, (byte)'0');
            a.@out(dx, al);
            a.ret();
            a.Label(ref letter);
            a.add(al, 'a' - 10);
            a.@out(dx, al);
            a.ret();
        });
        return GuestImages.Elf64(Origin, new ElfSegmentSpec(Origin, Origin, code, 0x4000));
    }

    private static (int Exit, string Console, string Stderr) Run(string kernel, params string[] extra)
    {
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        string[] args = ["run", "--kernel", kernel, "-m", "64M", "--no-reboot", "--device", "isa-debug-exit", .. extra];
        var exit = ActorvisorCli.Run(args, stdout, stderr);
        return (exit, Encoding.ASCII.GetString(stdout.ToArray()), stderr.ToString());
    }

    [GeneratedRegex(@"deterministic run: (\d+) instructions, [\d.]+ s virtual time, digest ([0-9a-f]{64})")]
    private static partial Regex Summary();

    internal static long[] TscValues(string console) =>
        console.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => long.Parse(l.AsSpan(1), NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();

    [Fact]
    public void TwoRunsTakeTheTimerInterruptsAtTheSameTscAndPrintTheSameDigest()
    {
        var kernel = GuestImages.WriteTemp(Kernel(), ".elf");
        try
        {
            var first = Run(kernel, "--deterministic");
            var second = Run(kernel, "--deterministic");
            Assert.True(first.Exit == 1, $"exit {first.Exit}: {first.Stderr}");
            Assert.Equal(first.Console, second.Console);
            var m1 = Summary().Match(first.Stderr);
            var m2 = Summary().Match(second.Stderr);
            Assert.True(m1.Success && m2.Success, first.Stderr + second.Stderr);
            Assert.Equal(m1.Groups[1].Value, m2.Groups[1].Value);
            Assert.Equal(m1.Groups[2].Value, m2.Groups[2].Value);

            // The TSC runs at 1 GHz on virtual time; the PIT's period is 11932 / 1.193182 MHz = 10.000217 ms.
            // Each handler reads the TSC the same few instructions after its interrupt, so the gaps are the period.
            var tsc = TscValues(first.Console);
            Assert.Equal(Ticks, tsc.Length);
            var period = 11932 * 1_000_000_000.0 / 1_193_182;
            for (var i = 1; i < tsc.Length; i++)
                Assert.InRange(tsc[i] - tsc[i - 1], period - 2, period + 2);
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Fact]
    public void RealTimeRunsDoNotPrintADigest()
    {
        var kernel = GuestImages.WriteTemp(Kernel(), ".elf");
        try
        {
            var run = Run(kernel);
            Assert.Equal(1, run.Exit);
            Assert.DoesNotMatch(Summary(), run.Stderr);
            Assert.Equal(Ticks, TscValues(run.Console).Length);
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Fact]
    public void RecordAndReplayExcludeEachOtherAndAMissingReplayFileIsAnError()
    {
        var err = new StringWriter();
        Assert.Equal(4, ActorvisorCli.Run(["run", "--kernel", "x", "--record", "a", "--replay", "b"], new MemoryStream(), err));
        Assert.Contains("exclude each other", err.ToString());
        err = new StringWriter();
        Assert.Equal(4, ActorvisorCli.Run(["run", "--kernel", "x", "--replay", "/nonexistent/input.log"], new MemoryStream(), err));
        Assert.Contains("no such file", err.ToString());
    }
}
