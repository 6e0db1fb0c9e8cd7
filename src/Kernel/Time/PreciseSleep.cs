using System.Runtime.InteropServices;

namespace Actorvisor.Kernel.Time;

/// <summary>
/// Sub-millisecond sleeps: .NET's Thread.Sleep and Monitor.Wait take whole milliseconds, while Linux's
/// nanosleep wakes within its timer slack (50 µs by default). Elsewhere it falls back to Thread.Sleep(0).
/// </summary>
internal static partial class PreciseSleep
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int nanosleep(in Timespec request, IntPtr remaining);

    public static void For(long nanoseconds)
    {
        if (nanoseconds <= 0) return;
        if (!OperatingSystem.IsLinux())
        {
            Thread.Sleep(0);
            return;
        }
        var t = new Timespec { Seconds = nanoseconds / 1_000_000_000, Nanoseconds = nanoseconds % 1_000_000_000 };
        nanosleep(t, IntPtr.Zero); // an early wake-up (a signal) just leaves more to yield through
    }
}
