using Akka.TestKit.Xunit2;
using Actorvisor.Actors.Cpu.Deterministic;
using Actorvisor.Host.Vm;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// The console UART runs on the thread of the vCPU that accesses it (the inline dispatcher), in real time as in
/// the deterministic schedule: a guest polling LSR before each byte gets its answer without a thread hop.
/// </summary>
public class ConsoleUartThreadTests() : TestKit(InlineDispatcher.Config)
{
    /// <summary>A console that records which thread each write came from.</summary>
    private sealed class ThreadRecordingStream : MemoryStream
    {
        public readonly List<string?> Threads = new();

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            lock (Threads) Threads.Add(Thread.CurrentThread.Name);
            base.Write(buffer.ToArray(), 0, buffer.Length);
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            lock (Threads) Threads.Add(Thread.CurrentThread.Name);
            base.Write(buffer, offset, count);
        }
    }

    [Fact]
    public void TheGuestsConsoleBytesAreWrittenOnItsVcpuThread()
    {
        var path = GuestImages.WriteTemp(GuestImages.HelloElf64("polled"), ".img");
        try
        {
            var console = new ThreadRecordingStream();
            Sys.ActorOf(VmSupervisor.Props(new VmConfig("inline-uart", 16 << 20, path, console), TestActor));
            var exited = ExpectMsg<VmProtocol.VmExited>(TimeSpan.FromSeconds(15));
            Assert.Equal(VmExitCode.Halted, exited.Code);
            Assert.Equal("polled", System.Text.Encoding.ASCII.GetString(console.ToArray()));
            // One write per byte, each from the vCPU's own thread: no thread-pool worker ran the UART.
            Assert.Equal(6, console.Threads.Count);
            Assert.All(console.Threads, t => Assert.Equal("vcpu-0", t));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
