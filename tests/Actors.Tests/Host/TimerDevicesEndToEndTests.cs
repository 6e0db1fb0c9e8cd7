using System.Globalization;
using System.Text;
using Actorvisor.Host;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>Guest programs that use the RTC, the PIT and the reset paths through the whole program.</summary>
public class TimerDevicesEndToEndTests
{
    private const ulong Origin = 0x200000;

    private static (int Exit, string Stdout, string Stderr) Run(Action<Assembler> program)
    {
        var code = GuestImages.Assemble(64, Origin, program);
        var image = GuestImages.Elf64(Origin, new ElfSegmentSpec(Origin, Origin, code, (ulong)code.Length));
        var path = GuestImages.WriteTemp(image, ".elf");
        try
        {
            using var stdout = new MemoryStream();
            var stderr = new StringWriter();
            var exit = ActorvisorCli.Run(["run", "--kernel", path, "-m", "64M", "--no-reboot"], stdout, stderr);
            return (exit, Encoding.ASCII.GetString(stdout.ToArray()), stderr.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Prints AL as two hex digits on COM1 (the UART transmits at once, so no THRE wait is needed).</summary>
    private static void PrintHexByte(Assembler a, Label printNibble)
    {
        a.mov(bl, al);
        a.shr(al, 4);
        a.call(printNibble);
        a.mov(al, bl);
        a.and(al, 0x0F);
        a.call(printNibble);
    }

    private static void NibbleRoutine(Assembler a, ref Label printNibble)
    {
        var digit = a.CreateLabel();
        a.Label(ref printNibble);
        a.cmp(al, 10);
        a.jb(digit);
        a.add(al, 'A' - '0' - 10);
        a.Label(ref digit);
        a.add(al, (byte)'0');
        a.mov(dx, GuestImages.Com1);
        a.@out(dx, al);
        a.ret();
    }

    private static void PrintChar(Assembler a, char c)
    {
        a.mov(al, (byte)c);
        a.mov(dx, GuestImages.Com1);
        a.@out(dx, al);
    }

    private static void Halt(Assembler a)
    {
        a.cli();
        a.hlt();
    }

    [Fact]
    public void GuestReadsTheRtcDateThroughCmosPortsAndItIsTodayUtc()
    {
        var before = DateTime.UtcNow.Date;
        var (exit, stdout, stderr) = Run(a =>
        {
            var nibble = a.CreateLabel();
            var waitUip = a.CreateLabel();
            // Wait until no update is in progress (register A bit 7), as a BIOS does.
            a.Label(ref waitUip);
            a.mov(al, 0x0A);
            a.@out(0x70, al);
            a.@in(al, 0x71);
            a.test(al, 0x80);
            a.jnz(waitUip);
            // Century, year, month, day: BCD after power-on, so each byte prints as two decimal digits.
            foreach (var (reg, sep) in new[] { (0x32, '\0'), (0x09, '-'), (0x08, '-'), (0x07, '\n') })
            {
                a.mov(al, (byte)reg);
                a.@out(0x70, al);
                a.@in(al, 0x71);
                PrintHexByte(a, nibble);
                if (sep != '\0') PrintChar(a, sep);
            }
            Halt(a);
            NibbleRoutine(a, ref nibble);
        });
        var after = DateTime.UtcNow.Date;
        Assert.Equal("", stderr);
        Assert.Equal(2, exit);
        // The guest printed "CCYY-MM-DD" without the dash after the century.
        var printed = DateTime.ParseExact(stdout.TrimEnd('\n'), "yyyy-MM-dd", CultureInfo.InvariantCulture);
        Assert.True(printed == before || printed == after, $"guest date {stdout} is not today ({before:yyyy-MM-dd})");
    }

    [Fact]
    public void GuestProgramsPitCounter0AndReadsItBackDecreasing()
    {
        var (exit, stdout, stderr) = Run(a =>
        {
            var nibble = a.CreateLabel();
            a.mov(al, 0x30);                  // counter 0, LSB then MSB, mode 0
            a.@out(0x43, al);
            a.mov(al, 0xFF);
            a.@out(0x40, al);
            a.@out(0x40, al);                 // count 0xFFFF: 55 ms to terminal count
            for (var i = 0; i < 2; i++)
            {
                if (i == 1)
                {
                    var spin = a.CreateLabel();
                    a.mov(ecx, 2000);         // let some time pass
                    a.Label(ref spin);
                    a.dec(ecx);
                    a.jnz(spin);
                }
                a.mov(al, 0x00);              // latch counter 0
                a.@out(0x43, al);
                a.@in(al, 0x40);
                a.mov(ah, al);                // AH = LSB
                a.@in(al, 0x40);              // AL = MSB
                a.mov(di, ax);
                PrintHexByte(a, nibble);      // MSB first
                a.mov(ax, di);
                a.mov(al, ah);
                PrintHexByte(a, nibble);
                PrintChar(a, '\n');
            }
            Halt(a);
            NibbleRoutine(a, ref nibble);
        });
        Assert.Equal("", stderr);
        Assert.Equal(2, exit);
        var counts = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, NumberStyles.HexNumber)).ToArray();
        Assert.Equal(2, counts.Length);
        Assert.True(counts[0] <= 0xFFFF && counts[1] < counts[0], $"counts {counts[0]:X4} then {counts[1]:X4} do not decrease");
    }

    [Theory]
    [InlineData(0x64, 0xFE, "i8042")]
    [InlineData(0xCF9, 0x06, "0xCF9")]
    public void GuestResetRequestEndsTheRunWithExitCode0(int port, int value, string source)
    {
        var (exit, stdout, stderr) = Run(a =>
        {
            var spin = a.CreateLabel();
            a.mov(dx, (ushort)port);
            a.mov(al, (byte)value);
            a.@out(dx, al);
            a.Label(ref spin);
            a.pause();
            a.jmp(spin);                      // a real machine would be resetting by now
        });
        Assert.Equal(0, exit);
        Assert.Equal("", stdout);
        Assert.Contains("rebooted", stderr);
        Assert.Contains(source, stderr);
    }
}
