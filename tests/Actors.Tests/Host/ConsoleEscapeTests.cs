using Actorvisor.Host.Vm;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>QEMU's -nographic escapes: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, anything else passes.</summary>
public class ConsoleEscapeTests
{
    private static (string Guest, bool Quit) Feed(ConsoleEscape e, params byte[] input)
    {
        var toGuest = new List<byte>();
        var quit = e.Feed(input, toGuest);
        return (System.Text.Encoding.Latin1.GetString(toGuest.ToArray()), quit);
    }

    [Fact]
    public void PlainBytesPassAndCtrlAXQuits()
    {
        var e = new ConsoleEscape();
        Assert.Equal(("ls\r", false), Feed(e, (byte)'l', (byte)'s', (byte)'\r'));
        Assert.Equal(("a", true), Feed(e, (byte)'a', 0x01, (byte)'x', (byte)'z'));
    }

    [Fact]
    public void CtrlACtrlASendsOneAndOtherKeysAfterCtrlAPassWithIt()
    {
        var e = new ConsoleEscape();
        Assert.Equal(("\u0001", false), Feed(e, 0x01, 0x01));
        Assert.Equal(("\u0001c", false), Feed(e, 0x01, (byte)'c'));
    }

    [Fact]
    public void TheEscapeSpansTwoReads()
    {
        var e = new ConsoleEscape();
        Assert.Equal(("", false), Feed(e, 0x01));
        Assert.Equal(("", true), Feed(e, (byte)'x'));
    }
}
