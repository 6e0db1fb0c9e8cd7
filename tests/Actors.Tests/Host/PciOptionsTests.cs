using System.Text;
using Actorvisor.Actors.Tests.Devices.Pci;
using Actorvisor.Host;
using Actorvisor.Host.Vm;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>bhyve's -s and the --disk/--rng/--net forms: parsing, placement, and each mistake a clear command-line error.</summary>
public class PciOptionsTests
{
    static PciOptionsTests() => VirtioDeviceCatalog.Register(FakeVirtioDevice.CatalogName, _ => new FakeVirtioDevice());

    private static bool Known(string name) => name is "virtio-blk" or "virtio-rng" or "virtio-net" or FakeVirtioDevice.CatalogName;

    [Theory]
    [InlineData("3,virtio-blk,disk.img,ro", 3, 0, "virtio-blk", "disk.img,ro")]
    [InlineData("4:2,virtio-rng", 4, 2, "virtio-rng", "")]
    [InlineData("0:5:1,virtio-net,tap=tap0", 5, 1, "virtio-net", "tap=tap0")]
    public void SlotSpecsParseAsBhyves(string text, int slot, int function, string device, string options)
    {
        Assert.Equal(new PciDeviceSpec(slot, function, device, options), PciDeviceSpec.TryParse(text, out var error));
        Assert.Null(error);
    }

    [Theory]
    [InlineData("32,virtio-rng", "slot '32'")]
    [InlineData("3:8,virtio-rng", "function '8'")]
    [InlineData("1:3:0,virtio-rng", "only bus 0")]
    [InlineData("virtio-rng", "expected slot")]
    [InlineData("x,virtio-rng", "slot 'x'")]
    public void MalformedSlotSpecsAreRefused(string text, string message)
    {
        Assert.Null(PciDeviceSpec.TryParse(text, out var error));
        Assert.Contains(message, error);
    }

    [Fact]
    public void ResolvePlacesAutomaticDevicesInFreeSlotsAndDropsTheFixedBridges()
    {
        var specs = new[]
        {
            new PciDeviceSpec(0, 0, "hostbridge", ""), new PciDeviceSpec(31, 0, "lpc", ""),
            new PciDeviceSpec(2, 0, "virtio-rng", ""), new PciDeviceSpec(-1, 0, "virtio-blk", "a.img"),
            new PciDeviceSpec(-1, 0, "virtio-net", "tap=t0"), new PciDeviceSpec(2, 1, "virtio-rng", ""),
        };
        var resolved = PciDeviceSpec.Resolve(specs, Known, out var error);
        Assert.Null(error);
        Assert.Equal([(2, 0, "virtio-rng"), (2, 1, "virtio-rng"), (3, 0, "virtio-blk"), (4, 0, "virtio-net")],
            resolved!.Select(s => (s.Slot, s.Function, s.Device)));
    }

    [Theory]
    [InlineData("3,virtio-rng|3,virtio-blk,x", "already taken")]
    [InlineData("3,no-such-device", "unknown PCI device 'no-such-device'")]
    [InlineData("0,virtio-rng", "holds the hostbridge")]
    [InlineData("31,virtio-rng", "holds the lpc")]
    [InlineData("5,lpc", "always at slot 31")]
    [InlineData("3:1,virtio-rng", "has no function 0")]
    public void MistakesAreClearErrors(string texts, string message)
    {
        var specs = texts.Split('|').Select(t => PciDeviceSpec.TryParse(t, out _)!);
        Assert.Null(PciDeviceSpec.Resolve(specs, Known, out var error));
        Assert.Contains(message, error);
    }

    [Theory]
    [InlineData("-s", "3,no-such-device", "unknown PCI device")]
    [InlineData("-s", "40,test-virtio", "slot '40'")]
    [InlineData("--net", "eth0", "expected tap=NAME")]
    public void TheCommandLineRefusesThemBeforeBuildingAVm(string option, string value, string message)
    {
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        var exit = ActorvisorCli.Run(["run", "--kernel", "/nonexistent", option, value, "-s", $"3,{FakeVirtioDevice.CatalogName}"], stdout, stderr);
        Assert.Equal((int)VmExitCode.Error, exit);
        Assert.Contains(message, stderr.ToString());
        Assert.Equal("", Encoding.ASCII.GetString(stdout.ToArray()));
    }
}
