using System.Diagnostics;
using System.Text;
using Actorvisor.Host;
using Actorvisor.Host.Guest;
using Actorvisor.Host.Vm;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// One boot of the default guest with `clocksource=hpet` for <see cref="LinuxClockTests"/>: the /init
/// measures its uptime across a 10 s sleep, reads and writes the RTC with hwclock and sets an RTC alarm
/// through sysfs. Each console line is stamped with the host's elapsed time when it arrives, so the guest's
/// clock can be held against the host's.
/// </summary>
public sealed class LinuxClockFixture
{
    public const string Init = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        echo "CS: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
        echo "HWCLOCK-R: $(hwclock -r -u 2>&1)"
        echo "UPTIME0: $(cut -d' ' -f1 /proc/uptime)"
        sleep 10
        echo "UPTIME1: $(cut -d' ' -f1 /proc/uptime)"
        echo "RTC8-BEFORE: $(grep ' 8:' /proc/interrupts)"
        echo +2 > /sys/class/rtc/rtc0/wakealarm
        echo "WAKEALARM-SET: [$(cat /sys/class/rtc/rtc0/wakealarm)]"
        sleep 4
        echo "WAKEALARM-AFTER: [$(cat /sys/class/rtc/rtc0/wakealarm)]"
        echo "RTC8-AFTER: $(grep ' 8:' /proc/interrupts)"
        date -u -s "2030-01-02 03:04:05" > /dev/null
        hwclock -w -u
        echo "HWCLOCK-AFTER-W: $(hwclock -r -u 2>&1)"
        echo "CLOCK-PROBE-END"
        poweroff -f
        """;

    public string? SkipReason { get; }
    public string Console { get; } = "";
    public int ExitStatus { get; }
    /// <summary>Each complete console line with the host time since the run started when it arrived.</summary>
    public IReadOnlyList<(TimeSpan At, string Line)> Lines { get; } = [];

    public LinuxClockFixture()
    {
        var guest = DebianGuest.FindCached();
        if (guest is null)
        {
            SkipReason = "no cached default guest: run `actorvisor guest fetch` (.ci/run does) to boot Debian's kernel";
            return;
        }
        var initrd = Path.Combine(Path.GetTempPath(), $"actorvisor-clock-test-{Environment.ProcessId}.cpio");
        DebianGuest.WriteInitramfs(guest, Init, initrd);
        try
        {
            var console = new StampedLines();
            var run = Task.Run(() => ActorvisorCli.Run(
                ["run", "--kernel", guest.Kernel, "--initrd", initrd, "--cmdline", "console=ttyS0 panic=-1 clocksource=hpet", "--no-reboot"],
                console, new StringWriter()));
            if (!run.Wait(LinuxBootFixture.Limit)) throw new TimeoutException($"the guest did not finish within {LinuxBootFixture.Limit}");
            ExitStatus = run.Result;
            Console = console.Text;
            Lines = console.Lines;
        }
        finally
        {
            File.Delete(initrd);
        }
    }

    private sealed class StampedLines : Stream
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly StringBuilder _text = new(), _line = new();
        private readonly List<(TimeSpan, string)> _lines = new();
        private readonly object _lock = new();

        public string Text
        {
            get { lock (_lock) return _text.ToString(); }
        }

        public IReadOnlyList<(TimeSpan, string)> Lines
        {
            get { lock (_lock) return _lines.ToArray(); }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var at = _clock.Elapsed;
            lock (_lock)
            {
                foreach (var b in buffer)
                {
                    var c = (char)b;
                    _text.Append(c);
                    if (c == '\n')
                    {
                        _lines.Add((at, _line.ToString().TrimEnd('\r')));
                        _line.Clear();
                    }
                    else _line.Append(c);
                }
            }
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
