using System.Diagnostics;
using System.Text;
using Actorvisor.Host;
using Actorvisor.Host.Guest;
using Actorvisor.Host.Vm;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// One boot of the real default guest (Debian's kernel, our busybox initramfs) through the whole program,
/// shared by the assertions of <see cref="LinuxBootTests"/>: a Linux boot on our CPU takes about a minute.
/// The /init prints a marker, the clocksource and /proc/interrupts twice a second apart, asks for a line on
/// the console and echoes it, then powers off. The line is typed into the program's stdin once the guest
/// asks for it, as a user would.
/// </summary>
public sealed class LinuxBootFixture
{
    public const string Marker = "MARKER: actorvisor guest up";
    public const string Prompt = "TYPE-A-LINE:";
    public const string Typed = "hello from the host";
    public static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    public const string Init = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        echo "MARKER: actorvisor guest up"
        echo "CLOCKSOURCE: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
        echo "INTERRUPTS-1"
        cat /proc/interrupts
        sleep 1
        echo "INTERRUPTS-2"
        cat /proc/interrupts
        echo "END-INTERRUPTS"
        echo "TYPE-A-LINE:"
        read line
        echo "GOT:[$line]"
        poweroff -f
        """;

    /// <summary>The console as it is written, for a look while the test runs or after it failed.</summary>
    public static readonly string ConsoleLog = Path.Combine(Path.GetTempPath(), "actorvisor-boot-test.log");

    /// <summary>Why the boot did not run (no cached guest), or null.</summary>
    public string? SkipReason { get; }
    public string Console { get; } = "";
    public string Stderr { get; } = "";
    public int ExitStatus { get; }
    public TimeSpan? MarkerAfter { get; }
    public TimeSpan Total { get; }

    public LinuxBootFixture()
    {
        var guest = DebianGuest.FindCached();
        if (guest is null)
        {
            SkipReason = "no cached default guest: run `actorvisor guest fetch` (.ci/run does) to boot Debian's kernel";
            return;
        }
        var initrd = Path.Combine(Path.GetTempPath(), $"actorvisor-boot-test-{Environment.ProcessId}.cpio");
        DebianGuest.WriteInitramfs(guest, Init, initrd);
        try
        {
            using var input = new TypedInput();
            var clock = Stopwatch.StartNew();
            TimeSpan? marker = null;
            using var log = new FileStream(ConsoleLog, FileMode.Create, FileAccess.Write, FileShare.Read);
            var console = new WatchingStream(log, text =>
            {
                if (marker is null && text.Contains(Marker)) marker = clock.Elapsed;
                if (text.EndsWith(Prompt + "\r\n", StringComparison.Ordinal) || text.EndsWith(Prompt + "\n", StringComparison.Ordinal))
                {
                    // A terminal sends CR for Enter; the guest's tty turns it into a newline.
                    input.Type(Encoding.ASCII.GetBytes(Typed + "\r"));
                }
            });
            var stderr = new StringWriter();
            var run = Task.Run(() => ActorvisorCli.Run(
                ["run", "--kernel", guest.Kernel, "--initrd", initrd, "--cmdline", "console=ttyS0 panic=-1", "--no-reboot", "--stats"],
                console, stderr, new ConsoleInput(input, IsTerminal: false)));
            if (!run.Wait(Limit)) throw new TimeoutException($"the guest did not finish within {Limit}; console so far:\n{console.Text}");
            ExitStatus = run.Result;
            Total = clock.Elapsed;
            MarkerAfter = marker;
            Console = console.Text;
            Stderr = stderr.ToString();
        }
        finally
        {
            File.Delete(initrd);
        }
    }

    /// <summary>A console sink that keeps the text and shows it, as it grows, to a callback (on the UART actor's thread).</summary>
    private sealed class WatchingStream(Stream copy, Action<string> onText) : Stream
    {
        private readonly StringBuilder _text = new();
        private readonly object _lock = new();

        public string Text
        {
            get { lock (_lock) return _text.ToString(); }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            string text;
            lock (_lock)
            {
                copy.Write(buffer);
                copy.Flush();
                _text.Append(Encoding.Latin1.GetString(buffer));
                text = _text.ToString(Math.Max(0, _text.Length - 256), Math.Min(256, _text.Length));
            }
            onText(text);
        }

        public override void Flush() { }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
