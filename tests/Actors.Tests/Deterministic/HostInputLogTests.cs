using Actorvisor.Actors.Cpu.Deterministic;

namespace Actorvisor.Actors.Tests.Deterministic;

public class HostInputLogTests
{
    [Fact]
    public void EntriesRoundTripThroughTheFile()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(path, [HostInputLog.Header,
                HostInputLog.Format(new HostInputLog.Entry(12, [0x68, 0x0A])),
                HostInputLog.Format(new HostInputLog.Entry(12, [0x01])),
                HostInputLog.Format(new HostInputLog.Entry(9_000_000_000, [0xFF]))]);
            var entries = HostInputLog.Read(path);
            Assert.Equal([12L, 12L, 9_000_000_000L], entries.Select(e => e.Retired));
            Assert.Equal(new byte[] { 0x68, 0x0A }, entries[0].Data);
            Assert.Equal(new byte[] { 0xFF }, entries[2].Data);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("12 68", "expected COUNT<TAB>HEX")]
    [InlineData("-3\t68", "expected COUNT<TAB>HEX")]
    [InlineData("12\t6", "not hex")]
    [InlineData("12\tzz", "not hex")]
    [InlineData("12\t68\n11\t68", "must not go backwards")]
    public void MalformedLogsAreRejectedWithTheLine(string text, string message)
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, text);
            var e = Assert.Throws<FormatException>(() => HostInputLog.Read(path));
            Assert.Contains(message, e.Message);
            Assert.Contains(path + ":", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
