using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Actorvisor.Actors.Devices.Virtio.Net;

namespace Actorvisor.Actors.Tests.Devices.Virtio;

/// <summary>
/// virtio-net on a real TAP device, in a network namespace the test makes and removes itself: the device's frames
/// go into the host's stack and the host's come back (ARP answered by the kernel, UDP both ways to a host socket).
/// </summary>
public sealed partial class TapNamespaceTests
{
    private static readonly byte[] GuestMac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    private static readonly byte[] HostIp = [10, 77, 0, 1], GuestIp = [10, 77, 0, 2];
    private const int CLONE_NEWNET = 0x40000000;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    private static void Ip(params string[] args)
    {
        var p = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"ip {string.Join(' ', args)}: {err}");
    }

    /// <summary>Runs <paramref name="f"/> on a fresh thread moved into the namespace; what it opens stays in it.</summary>
    private static T InNamespace<T>(string ns, Func<T> f)
    {
        T? result = default;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                using var h = File.OpenHandle($"/var/run/netns/{ns}");
                if (setns((int)h.DangerousGetHandle(), CLONE_NEWNET) != 0)
                    throw new IOException($"setns failed (errno {Marshal.GetLastPInvokeError()})");
                result = f();
            }
            catch (Exception e) { error = e; }
        });
        t.Start();
        t.Join();
        if (error is not null) throw error;
        return result!;
    }

    [SkippableFact]
    public void Frames_cross_a_tap_in_a_network_namespace_both_ways()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "TAP devices are Linux");
        Skip.If(geteuid() != 0, "creating a network namespace and a TAP needs root");
        Skip.IfNot(File.Exists("/dev/net/tun"), "no /dev/net/tun");
        var ns = $"avtest{Environment.ProcessId}";
        try { Ip("netns", "add", ns); }
        catch (Exception e) { Skip.If(true, $"cannot create a network namespace: {e.Message}"); }
        try
        {
            var tap = TapBackend.Open("avtap0", ns);
            using var driver = new NetTestDriver(GuestMac, tap);
            Assert.Equal("avtap0", tap.Name);
            Ip("-n", ns, "link", "set", "lo", "up");
            Ip("-n", ns, "addr", "add", "10.77.0.1/24", "dev", "avtap0");
            Ip("-n", ns, "link", "set", "avtap0", "up");
            using var host = InNamespace(ns, () =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.Bind(new IPEndPoint(new IPAddress(HostIp), 7777));
                return s;
            });
            host.ReceiveTimeout = 5000;
            driver.PostReceiveBuffers();

            // Device -> TAP -> kernel, and the kernel's ARP reply back through the TAP to the device.
            driver.Send(Frames.Arp(1, GuestMac, GuestIp, new byte[6], HostIp, Frames.Broadcast));
            var reply = driver.WaitFor(f => Frames.IsArp(f, 2));
            Assert.NotNull(reply);
            Assert.Equal(GuestMac, reply.AsSpan(0, 6).ToArray());
            Assert.Equal(HostIp, Frames.ArpSenderIp(reply).ToArray());
            var hostMac = Frames.ArpSenderMac(reply).ToArray();

            // A UDP datagram from the device arrives at a socket on the host side.
            driver.Send(Frames.Udp(hostMac, GuestMac, GuestIp, HostIp, 5555, 7777, "from the guest"u8));
            var buffer = new byte[100];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            var n = host.ReceiveFrom(buffer, ref from);
            Assert.Equal("from the guest"u8.ToArray(), buffer.AsSpan(0, n).ToArray());
            Assert.Equal(new IPEndPoint(new IPAddress(GuestIp), 5555), from);

            // And one from the host socket reaches the device (answering the kernel's ARP if it asks first).
            host.SendTo("from the host"u8, new IPEndPoint(new IPAddress(GuestIp), 5555));
            var udp = driver.WaitFor(f => Frames.UdpPayload(f, 5555) is not null, other: f =>
            {
                if (Frames.IsArp(f, 1) && Frames.ArpTargetIp(f).SequenceEqual(GuestIp))
                    driver.Send(Frames.Arp(2, GuestMac, GuestIp, Frames.ArpSenderMac(f).ToArray(), Frames.ArpSenderIp(f).ToArray(), Frames.ArpSenderMac(f).ToArray()));
            });
            Assert.NotNull(udp);
            Assert.Equal("from the host"u8.ToArray(), Frames.UdpPayload(udp, 5555));
            Assert.Equal(hostMac, udp.AsSpan(6, 6).ToArray());
            Assert.True(driver.Device.IsLive);
        }
        finally
        {
            Ip("netns", "del", ns);
        }
    }
}
