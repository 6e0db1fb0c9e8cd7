using Actorvisor.Actors.Devices.Virtio.Blk;
using Actorvisor.Actors.Devices.Virtio.Console;
using Actorvisor.Actors.Devices.Virtio.Net;
using Actorvisor.Actors.Devices.Virtio.Rng;
using Actorvisor.Host.Vm;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>The option texts of the virtio devices in the PCI device catalog.</summary>
public sealed class VirtioDeviceOptionsTests
{
    [Fact]
    public void Every_virtio_device_is_in_the_catalog()
    {
        foreach (var name in new[] { "virtio-blk", "virtio-rng", "virtio-console", "virtio-net" })
            Assert.True(VirtioDeviceCatalog.IsKnown(name), name);
    }

    [Fact]
    public void Blk_takes_a_path_ro_and_a_serial()
    {
        var path = Path.GetTempFileName();
        File.WriteAllBytes(path, new byte[4096]);
        try
        {
            using var rw = Assert.IsType<VirtioBlk>(VirtioDeviceCatalog.Create("virtio-blk", path));
            Assert.Equal(0UL, rw.OfferedFeatures & BlkSpec.FeatureReadOnly);
            Assert.Equal(8UL, rw.Capacity);
            using var ro = Assert.IsType<VirtioBlk>(VirtioDeviceCatalog.Create("virtio-blk", $"{path},ro,serial=disk-7"));
            Assert.NotEqual(0UL, ro.OfferedFeatures & BlkSpec.FeatureReadOnly);
            Assert.False(ro.IsSynchronous);
            using var sync = Assert.IsType<VirtioBlk>(VirtioDeviceCatalog.Create("virtio-blk", $"{path},sync"));
            Assert.True(sync.IsSynchronous);
            Assert.Contains("unknown option 'rw'", Assert.Throws<ArgumentException>(() => VirtioDeviceCatalog.Create("virtio-blk", $"{path},rw")).Message);
            Assert.Contains("serial", Assert.Throws<ArgumentException>(() => VirtioDeviceCatalog.Create("virtio-blk", $"{path},serial=123456789012345678901")).Message);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Contains("cannot open", Assert.Throws<ArgumentException>(() => VirtioDeviceCatalog.Create("virtio-blk", "/nonexistent/disk.img")).Message);
        Assert.Contains("image path", Assert.Throws<ArgumentException>(() => VirtioDeviceCatalog.Create("virtio-blk", "")).Message);
    }

    [Fact]
    public void Rng_takes_no_options()
    {
        Assert.IsType<VirtioRng>(VirtioDeviceCatalog.Create("virtio-rng", ""));
        Assert.Throws<ArgumentException>(() => VirtioDeviceCatalog.Create("virtio-rng", "x"));
    }

    [Fact]
    public void Console_listens_on_a_socket()
    {
        var sock = Path.Combine(Path.GetTempPath(), $"vcon-opt-{Guid.NewGuid():N}.sock");
        using (Assert.IsType<VirtioConsole>(VirtioDeviceCatalog.Create("virtio-console", $"socket={sock}")))
            Assert.True(File.Exists(sock));
        Assert.False(File.Exists(sock));
        Assert.Contains("socket=PATH or stdio", Assert.Throws<ArgumentException>(() => VirtioDeviceCatalog.Create("virtio-console", "tcp=1")).Message);
    }

    [Fact]
    public void Net_takes_a_switch_or_a_tap_and_a_mac()
    {
        using var a = Assert.IsType<VirtioNet>(VirtioDeviceCatalog.Create("virtio-net", "switch=opt-test,mac=02:00:00:00:00:0a"));
        Assert.Equal(new byte[] { 2, 0, 0, 0, 0, 0xa }, a.Mac.ToArray());
        using var b = Assert.IsType<VirtioNet>(VirtioDeviceCatalog.Create("virtio-net", "switch=opt-test"));
        Assert.Equal(2, b.Mac[0] & 3); // random, locally administered, unicast
        Assert.Equal(2, NetSwitch.Shared("opt-test").PortCount);
        foreach (var bad in new[] { "", "tap=x,switch=y", "switch=s,mac=01:00:00:00:00:01", "switch=s,mac=zz", "switch=s,netns=n", "bridge=x" })
            Assert.Throws<ArgumentException>(() => VirtioDeviceCatalog.Create("virtio-net", bad));
    }
}
