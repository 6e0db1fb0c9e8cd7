using Actorvisor.Actors.Devices.Virtio.Net;
using Actorvisor.Kernel.Faults;
using Microsoft.Extensions.Time.Testing;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

/// <summary>virtio-net's fault point decided by the fault engine: frames lost, duplicated and corrupted either way.</summary>
public sealed class VirtioNetFaultTests : IDisposable
{
    private static readonly byte[] MacA = [0x52, 0x54, 0, 0, 0, 0xa], MacB = [0x52, 0x54, 0, 0, 0, 0xb];
    private readonly NetSwitch _switch = new();
    private readonly NetTestDriver _a, _b;

    public VirtioNetFaultTests()
    {
        _a = new NetTestDriver(MacA, _switch.CreatePort());
        _b = new NetTestDriver(MacB, _switch.CreatePort());
        _a.PostReceiveBuffers();
        _b.PostReceiveBuffers();
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }

    private static FaultEngine Engine(FaultKind kind, FaultAction action, FaultTrigger? trigger = null) =>
        new(3, new FakeTimeProvider(), [new FaultRule("r", new FaultTarget("virtio-net-*", kind), action, trigger ?? FaultTrigger.Always)]);

    /// <summary>The payload as text, without the padding to Ethernet's 60-byte minimum.</summary>
    private static string Text(byte[] frame) => System.Text.Encoding.ASCII.GetString(frame, 14, frame.Length - 14).TrimEnd('\0');

    private static byte[] Frame(string text) => Frames.Ethernet(MacB, MacA, 0x88b5, System.Text.Encoding.ASCII.GetBytes(text));

    /// <summary>Sends from A and returns every frame B got once things settled.</summary>
    private List<byte[]> SendAndCollect(params string[] texts)
    {
        foreach (var t in texts) _a.Send(Frame(t));
        var got = new List<byte[]>();
        var until = DateTime.UtcNow.AddMilliseconds(300);
        while (DateTime.UtcNow < until)
        {
            _b.Harness.Owner.Drain();
            got.AddRange(_b.Take());
            Thread.Sleep(10);
        }
        return got;
    }

    [Fact]
    public void EverySecondSentFrameIsLost()
    {
        _a.Device.Faults = new EngineNetFaults(Engine(FaultKind.NetTx, new FaultAction(FaultVerdict.Drop), new FaultTrigger(Every: 2)), "virtio-net-3");
        var got = SendAndCollect("one", "two", "three", "four");
        // every: 2 fires on the 1st matching frame and each 2nd after it.
        Assert.Equal(["two", "four"], got.Select(Text));
        Assert.Equal(2, _a.Device.FaultDropped);
        Assert.Equal(4, _a.Device.TxFrames);
    }

    [Fact]
    public void AReceivedFrameCanBeDuplicated()
    {
        _b.Device.Faults = new EngineNetFaults(Engine(FaultKind.NetRx, new FaultAction(FaultVerdict.Duplicate), new FaultTrigger(Limit: 1)), "virtio-net-4");
        var got = SendAndCollect("dup", "single");
        Assert.Equal(["dup", "dup", "single"], got.Select(Text));
    }

    [Fact]
    public void ACorruptedFrameHasTheMaskXoredAfterItsEthernetHeader()
    {
        _b.Device.Faults = new EngineNetFaults(Engine(FaultKind.NetRx, new FaultAction(FaultVerdict.Corrupt, XorMask: 0x2020)), "virtio-net-4");
        var got = Assert.Single(SendAndCollect("abcdefghij"));
        var sent = Frame("abcdefghij");
        Assert.Equal(sent.AsSpan(0, 14).ToArray(), got.AsSpan(0, 14).ToArray()); // addresses intact: it still arrives
        Assert.Equal("ABcdefghij", System.Text.Encoding.ASCII.GetString(got, 14, 10));
    }

    [Fact]
    public void ARandomBitFlipIsTheSameForTheSameSeed()
    {
        byte[] Flip(ulong seed)
        {
            var engine = new FaultEngine(seed, new FakeTimeProvider(),
                [new FaultRule("r", new FaultTarget(null, FaultKind.NetRx), new FaultAction(FaultVerdict.Corrupt, RandomBit: true), FaultTrigger.Always)]);
            var fault = new EngineNetFaults(engine, "virtio-net-4").Decide(NetDirection.Receive, Frame("payload!"));
            return fault.Apply(Frame("payload!"));
        }
        var a = Flip(9);
        Assert.Equal(a, Flip(9));
        var diff = a.Zip(Frame("payload!"), (x, y) => System.Numerics.BitOperations.PopCount((uint)(x ^ y))).ToArray();
        Assert.Equal(1, diff.Sum());
        Assert.InRange(Array.FindIndex(diff, d => d != 0), 14, 21);
    }

    [Theory]
    [InlineData("action=delay delay=1ms", "a frame can be lost (drop), duplicated (duplicate) or corrupted (corrupt)")]
    [InlineData("action=corrupt", "corrupt needs a nonzero mask or random-bit")]
    public void BadNetRulesAreRefused(string keys, string message)
    {
        var map = keys.Split(' ').Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]);
        (map["name"], map["kind"]) = ("n", "net.rx");
        var e = Assert.Throws<FormatException>(() => Actorvisor.Host.Faults.FaultScenario.ParseRule(map, "faults add"));
        Assert.Contains(message, e.Message);
    }
}
