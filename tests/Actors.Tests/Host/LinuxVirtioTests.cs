using System.Text;
using Xunit.Abstractions;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>Debian's kernel drives our virtio devices (one shared boot, <see cref="LinuxVirtioFixture"/>).</summary>
[Collection(GuestBoot.Collection)]
public sealed class LinuxVirtioTests(LinuxVirtioFixture fixture, ITestOutputHelper output) : IClassFixture<LinuxVirtioFixture>
{
    private GuestBootResult Boot()
    {
        Skip.If(fixture.SkipReason is not null, fixture.SkipReason);
        var r = fixture.Result!;
        foreach (var l in r.Lines.Where(l => l.Line.Contains(':') && l.Line.Split(':')[0].All(c => char.IsUpper(c) || c == '-')))
            output.WriteLine(l.Line);
        return r;
    }

    [SkippableFact]
    public void The_guest_sees_vda_with_the_image_size_and_serial()
    {
        var boot = Boot();
        Assert.Equal((LinuxVirtioFixture.ImageBytes / 512).ToString(), boot.Value("VDASIZE").Value);
        Assert.Equal("0", boot.Value("VDARO").Value);
        Assert.Equal(LinuxVirtioFixture.Serial, boot.Value("VDASERIAL").Value);
    }

    [SkippableFact]
    public void The_guest_reads_the_sector_the_host_wrote()
    {
        var boot = Boot();
        Assert.Equal(LinuxVirtioFixture.HostPattern, boot.Value("VDABLOCK").Value);
    }

    [SkippableFact]
    public void The_host_finds_the_sector_the_guest_wrote_and_nothing_else_changed()
    {
        var boot = Boot();
        Assert.Equal("0", boot.Value("VDAWRITE").Value);
        var sector = fixture.ImageAfter.AsSpan(LinuxVirtioFixture.WriteSector * 512, 512);
        var expected = new byte[512];
        Encoding.ASCII.GetBytes(LinuxVirtioFixture.GuestPattern).CopyTo(expected, 0);
        Assert.Equal(expected, sector.ToArray());
        // Every other byte of the image is as the host wrote it.
        var before = fixture.ImageBefore;
        var after = fixture.ImageAfter;
        Assert.Equal(before.Length, after.Length);
        var changed = Enumerable.Range(0, before.Length / 512).Where(s => !before.AsSpan(s * 512, 512).SequenceEqual(after.AsSpan(s * 512, 512))).ToArray();
        Assert.Equal([LinuxVirtioFixture.WriteSector], changed);
    }

    [SkippableFact]
    public void Hwrng_yields_bytes_from_virtio_rng()
    {
        var boot = Boot();
        Assert.Equal("virtio_rng.0", boot.Value("HWRNG").Value);
        Assert.Equal("128", boot.Value("RNGBYTES").Value);
        var hex = boot.Value("RNGHEX").Value;
        Assert.Matches("^[0-9a-f]{32}$", hex);
        Assert.NotEqual(new string('0', 32), hex);
    }

    [SkippableFact]
    public void The_console_port_carries_bytes_both_ways()
    {
        var boot = Boot();
        Assert.Contains(LinuxVirtioFixture.ConsoleOut, fixture.ConsoleReceived);
        Assert.Equal($"[{LinuxVirtioFixture.ConsoleIn}]", boot.Value("HVCIN").Value);
    }

    [SkippableFact]
    public void The_guest_pings_the_host_through_a_tap_in_a_network_namespace()
    {
        var boot = Boot();
        Skip.If(fixture.NetSkipReason is not null, fixture.NetSkipReason);
        Assert.Equal("0", boot.Value("PING").Value);
        Assert.Contains("3 packets transmitted, 3 packets received", boot.Console);
    }

    [SkippableFact]
    public void No_virtio_device_complained_or_needed_a_reset()
    {
        var boot = Boot();
        var start = boot.Console.IndexOf("VIRTIO-KMSG:", StringComparison.Ordinal);
        var end = boot.Console.IndexOf("END-VIRTIO-KMSG", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "the /init did not print its virtio log section");
        Assert.Equal("", boot.Console[(start + "VIRTIO-KMSG:".Length)..end].Trim());
        Assert.Equal(1, boot.ExitStatus); // the /init ends with poweroff -f: bhyve's status 1
    }
}
