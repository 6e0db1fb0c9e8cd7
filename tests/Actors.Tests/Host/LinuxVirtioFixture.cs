using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// One boot of the real guest with the virtio devices of this branch, shared by <see cref="LinuxVirtioTests"/>:
/// a virtio-blk disk on a raw image the test wrote (`--disk`), virtio-rng (`--rng`), a virtio-console port on a UNIX
/// socket the test talks to during the boot, and, where the host allows (root, /dev/net/tun, iproute2), a virtio-net
/// on a TAP inside a network namespace the fixture makes, with the host end at 10.78.0.1. The /init reads the
/// disk's size, serial and a sector the test wrote, writes another sector and syncs, reads /dev/hwrng, talks on
/// /dev/hvc0, pings the host end through the TAP, and powers off; the fixture then reads the image back.
/// </summary>
public sealed class LinuxVirtioFixture : IDisposable
{
    public const int ImageBytes = 16 << 20;
    public const int ReadSector = 100, WriteSector = 200;
    public const string HostPattern = "HOST-WROTE-SECTOR-100";
    public const string GuestPattern = "GUEST-WROTE-SECTOR-200";
    public const string Serial = "actorvisor-vda";
    public const string HostIp = "10.78.0.1", GuestIp = "10.78.0.2";
    public const string ConsoleOut = "HVC-OUT-FROM-GUEST", ConsoleIn = "HVC-IN-FROM-HOST";

    private static readonly string Init = $$"""
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        echo "{{GuestBoot.Marker}}"
        for m in virtio_pci virtio_blk virtio_rng virtio_console virtio_net; do modprobe $m; done
        for d in /sys/bus/virtio/devices/*; do echo "VIRTIODEV: ${d##*/} $(cat $d/device) $(cat $d/status)"; done
        echo "VDASIZE: $(cat /sys/block/vda/size)"
        echo "VDARO: $(cat /sys/block/vda/ro)"
        echo "VDASERIAL: $(cat /sys/block/vda/serial)"
        echo "VDABLOCK: $(dd if=/dev/vda bs=512 skip={{ReadSector}} count=1 2>/dev/null | head -c {{HostPattern.Length}})"
        printf '{{GuestPattern}}' | dd of=/dev/vda bs=512 seek={{WriteSector}} count=1 conv=sync,fsync 2>/dev/null; echo "VDAWRITE: $?"
        sync
        echo "HWRNG: $(cat /sys/class/misc/hw_random/rng_current)"
        echo "RNGBYTES: $(dd if=/dev/hwrng bs=32 count=4 2>/dev/null | wc -c)"
        echo "RNGHEX: $(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
        if [ -e /dev/hvc0 ]; then
          exec 3<>/dev/hvc0
          echo "{{ConsoleOut}}" >&3
          read -t 30 line <&3
          exec 3>&-
          echo "HVCIN: [$line]"
        fi
        if [ -e /sys/class/net/eth0 ]; then
          echo "NETMAC: $(cat /sys/class/net/eth0/address)"
          ip link set eth0 up
          ip addr add {{GuestIp}}/24 dev eth0
          ping -c 3 -W 5 {{HostIp}} > /tmp/ping 2>&1; echo "PING: $?"
          cat /tmp/ping
        fi
        echo "VIRTIO-KMSG:"; dmesg | grep -i -E 'virtio|vda|hwrng' | grep -i -E 'error|fail|reset|broken|bad' ; echo "END-VIRTIO-KMSG"
        poweroff -f
        """;

    public string? SkipReason { get; } = GuestBoot.SkipReason;
    public GuestBootResult? Result { get; }
    /// <summary>Why the network part did not run, or null if it did.</summary>
    public string? NetSkipReason { get; }
    public byte[] ImageAfter { get; } = [];
    public byte[] ImageBefore { get; } = new byte[ImageBytes];
    /// <summary>What the host end of the console socket received during the boot.</summary>
    public string ConsoleReceived { get; private set; } = "";

    private readonly string _image = Path.Combine(Path.GetTempPath(), $"actorvisor-vda-{Guid.NewGuid():N}.img");
    private readonly string _socket = Path.Combine(Path.GetTempPath(), $"actorvisor-hvc-{Guid.NewGuid():N}.sock");
    private readonly string _netns = $"avguest{Environment.ProcessId}";

    public LinuxVirtioFixture()
    {
        if (SkipReason is not null) return;
        new Random(9).NextBytes(ImageBefore);
        var pattern = Encoding.ASCII.GetBytes(HostPattern);
        pattern.CopyTo(ImageBefore, ReadSector * 512);
        File.WriteAllBytes(_image, ImageBefore);

        List<string> args = ["--no-reboot", "--rng", "-s", $"4,virtio-blk,{_image},serial={Serial}", "-s", $"5,virtio-console,socket={_socket}"];
        NetSkipReason = PrepareNetwork();
        if (NetSkipReason is null) args.AddRange(["-s", $"6,virtio-net,tap=avgtap0,netns={_netns}"]);

        using var stop = new CancellationTokenSource();
        var console = Task.Run(() => TalkOnConsole(stop.Token));
        try
        {
            Result = GuestBoot.Run(Init, "console=ttyS0 panic=-1", args);
        }
        finally
        {
            stop.Cancel();
            console.Wait(TimeSpan.FromSeconds(5));
        }
        ImageAfter = File.ReadAllBytes(_image);
    }

    /// <summary>The host end of the console: waits for the guest's line, answers with one of its own.</summary>
    private void TalkOnConsole(CancellationToken stop)
    {
        var received = new StringBuilder();
        try
        {
            while (!File.Exists(_socket)) { if (stop.IsCancellationRequested) return; Thread.Sleep(50); }
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(_socket));
            var buffer = new byte[4096];
            var answered = false;
            while (!stop.IsCancellationRequested)
            {
                if (!s.Poll(100_000, SelectMode.SelectRead)) continue;
                var n = s.Receive(buffer);
                if (n == 0) break;
                received.Append(Encoding.ASCII.GetString(buffer, 0, n));
                if (!answered && received.ToString().Contains(ConsoleOut))
                {
                    s.Send(Encoding.ASCII.GetBytes(ConsoleIn + "\n"));
                    answered = true;
                }
            }
        }
        catch (Exception e) { received.Append($"[console task: {e.Message}]"); }
        finally { ConsoleReceived = received.ToString(); }
    }

    private string? PrepareNetwork()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") return "the TAP part needs root";
        if (!File.Exists("/dev/net/tun")) return "no /dev/net/tun";
        try
        {
            Ip("netns", "add", _netns);
            Ip("-n", _netns, "tuntap", "add", "dev", "avgtap0", "mode", "tap");
            Ip("-n", _netns, "addr", "add", $"{HostIp}/24", "dev", "avgtap0");
            Ip("-n", _netns, "link", "set", "avgtap0", "up");
            return null;
        }
        catch (Exception e)
        {
            return $"cannot make the network namespace: {e.Message}";
        }
    }

    private static void Ip(params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"ip {string.Join(' ', args)}: {err.Trim()}");
    }

    public void Dispose()
    {
        File.Delete(_image);
        File.Delete(_socket);
        if (NetSkipReason is null)
        {
            try { Ip("netns", "del", _netns); } catch (Exception) { }
        }
    }
}
