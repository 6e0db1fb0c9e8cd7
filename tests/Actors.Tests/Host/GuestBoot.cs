using System.Diagnostics;
using System.Text;
using Actorvisor.Host;
using Actorvisor.Host.Guest;
using Actorvisor.Host.Vm;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>What one boot of the real guest printed and how it ended; each console line with the host time its first character arrived.</summary>
public sealed record GuestBootResult(string Console, string Stderr, int ExitStatus, TimeSpan? MarkerAfter, TimeSpan Total,
    IReadOnlyList<(TimeSpan At, string Line)> Lines)
{
    /// <summary>
    /// Asserts that the guest's clock kept wall time within 1 % across its 10 s sleep: the uptimes it printed
    /// on its "UPTIME0:" and "UPTIME1:" lines against the host time between their arrivals. A sleep never ends
    /// early; it may end late on a loaded host (a wake-up is not a clock), so only the ratio is held to 1 %.
    /// The /init reads /proc/uptime with the shell's builtin `read` and echoes it at once: a `$(cut ...)`
    /// would put a process exit between the reading and the printing, which a loaded host stretches by a
    /// second and more.
    /// </summary>
    public void AssertGuestKeptWallTime(Xunit.Abstractions.ITestOutputHelper output)
    {
        var (at0, up0) = Value("UPTIME0");
        var (at1, up1) = Value("UPTIME1");
        var guest = double.Parse(up1, System.Globalization.CultureInfo.InvariantCulture) - double.Parse(up0, System.Globalization.CultureInfo.InvariantCulture);
        var host = (at1 - at0).TotalSeconds;
        output.WriteLine($"guest {guest:F3} s, host {host:F3} s");
        Assert.True(guest >= 10.0, $"slept {guest:F3} s of 10");
        Assert.InRange(Math.Abs(guest - host) / host, 0.0, 0.01);
    }

    /// <summary>What follows "KEY:" on the first console line that starts so, and when the line arrived.</summary>
    public (TimeSpan At, string Value) Value(string key)
    {
        var hit = LineStarting(key + ":");
        Assert.True(hit is not null, $"no {key} line on the console");
        return (hit.Value.At, hit.Value.Line[(key.Length + 1)..].Trim());
    }

    /// <summary>The first console line that starts with <paramref name="prefix"/>, and when it arrived.</summary>
    public (TimeSpan At, string Line)? LineStarting(string prefix) =>
        Lines.FirstOrDefault(l => l.Line.StartsWith(prefix, StringComparison.Ordinal)) is { Line: not null } hit ? hit : null;
}

/// <summary>
/// Boots the real default guest (Debian's kernel, busybox) with an /init of the test's through the whole
/// program, in-process: `actorvisor run --kernel --initrd --cmdline ... ARGS`. When the console shows
/// <c>prompt</c> at the end of a line, <c>typed</c> and a CR are typed into stdin, as a user would.
/// </summary>
public static class GuestBoot
{
    public const string Marker = "MARKER: actorvisor guest up";
    /// <summary>
    /// The test collection of every class that boots the real guest: one boot at a time, since a Linux boot
    /// wants a host core and CI has two.
    /// </summary>
    public const string Collection = "Linux guest boots";
    public static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    /// <summary>Why a boot cannot run here (no cached guest), or null.</summary>
    public static string? SkipReason => DebianGuest.FindCached() is null
        ? "no cached default guest: run `actorvisor guest fetch` (.ci/run does) to boot Debian's kernel"
        : null;

    /// <summary>The console of the latest boot, as it is written, for a look while a test runs or after it failed.</summary>
    public static readonly string ConsoleLog = Path.Combine(Path.GetTempPath(), "actorvisor-boot-test.log");

    public static GuestBootResult Run(string init, string cmdline, IEnumerable<string> args, string? prompt = null, string? typed = null)
    {
        var guest = DebianGuest.FindCached() ?? throw new InvalidOperationException(SkipReason);
        var initrd = Path.Combine(Path.GetTempPath(), $"actorvisor-boot-test-{Environment.ProcessId}-{Guid.NewGuid():N}.cpio");
        DebianGuest.WriteInitramfs(guest, init, initrd);
        try
        {
            using var input = new TypedInput();
            using var log = new FileStream(ConsoleLog, FileMode.Create, FileAccess.Write, FileShare.Read);
            var clock = Stopwatch.StartNew();
            var console = new LineRecorder(log, clock, line =>
            {
                if (prompt is not null && line == prompt) input.Type(Encoding.ASCII.GetBytes(typed + "\r"));
            });
            var stderr = new StringWriter();
            string[] argv = ["run", "--kernel", guest.Kernel, "--initrd", initrd, "--cmdline", cmdline, .. args];
            var run = Task.Run(() => ActorvisorCli.Run(argv, console, stderr, new ConsoleInput(input, IsTerminal: false)));
            if (!run.Wait(Limit)) throw new TimeoutException($"the guest did not finish within {Limit}; console so far:\n{console.Text}");
            var lines = console.Lines;
            return new GuestBootResult(console.Text, stderr.ToString(), run.Result,
                lines.FirstOrDefault(l => l.Line.Contains(Marker)) is { Line: not null } m ? m.At : null, clock.Elapsed, lines);
        }
        finally
        {
            File.Delete(initrd);
        }
    }

    /// <summary>
    /// A console sink that keeps the text and its lines with their arrival times; whole lines go to a callback (on
    /// the UART actor's thread). A line's time is when its first character arrived: the rest of a line comes
    /// after THR-empty interrupts once the UART's FIFO is full, and on a loaded host those add a variable delay
    /// that would count against the guest's clock in <see cref="GuestBootResult.AssertGuestKeptWallTime"/>.
    /// </summary>
    private sealed class LineRecorder(Stream copy, Stopwatch clock, Action<string> onLine) : Stream
    {
        private readonly StringBuilder _text = new();
        private readonly StringBuilder _line = new();
        private readonly List<(TimeSpan, string)> _lines = new();
        private readonly object _lock = new();
        private TimeSpan _lineStart;

        public string Text
        {
            get { lock (_lock) return _text.ToString(); }
        }

        public IReadOnlyList<(TimeSpan At, string Line)> Lines
        {
            get { lock (_lock) return _lines.ToArray(); }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var done = new List<string>();
            lock (_lock)
            {
                copy.Write(buffer);
                copy.Flush();
                var text = Encoding.Latin1.GetString(buffer);
                _text.Append(text);
                foreach (var c in text)
                {
                    if (c == '\r') continue;
                    if (c != '\n')
                    {
                        if (_line.Length == 0) _lineStart = clock.Elapsed;
                        _line.Append(c);
                        continue;
                    }
                    var line = _line.ToString();
                    var at = _line.Length == 0 ? clock.Elapsed : _lineStart;
                    _line.Clear();
                    _lines.Add((at, line));
                    done.Add(line);
                }
            }
            foreach (var line in done) onLine(line);
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

/// <summary>
/// The real-guest boots, each made once (in this order, one at a time) and shared by every test class of the
/// collection that takes it.
/// </summary>
[CollectionDefinition(GuestBoot.Collection)]
public sealed class GuestBootCollection : ICollectionFixture<LinuxBootFixture>, ICollectionFixture<LinuxClockFixture>,
    ICollectionFixture<LinuxLegacyBootFixture>;
