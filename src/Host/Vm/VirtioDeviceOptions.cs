using Actorvisor.Actors.Devices.Virtio;
using Actorvisor.Actors.Devices.Virtio.Blk;
using Actorvisor.Actors.Devices.Virtio.Console;
using Actorvisor.Actors.Devices.Virtio.Net;
using Actorvisor.Actors.Devices.Virtio.Rng;

namespace Actorvisor.Host.Vm;

/// <summary>
/// The option texts of the virtio devices (what follows the device name in <c>-s slot,NAME,OPTIONS</c>), each turned
/// into its device. A wrong option, or a host resource that cannot be opened, is an <see cref="ArgumentException"/>
/// whose message is for the user.
/// </summary>
public static class VirtioDeviceOptions
{
    /// <summary>virtio-blk,PATH[,ro][,serial=ID]: a raw image, read-write unless "ro".</summary>
    /// <summary>virtio-blk's `sync`: file I/O inline on the device's thread, not its I/O thread. The deterministic
    /// schedule sets it, since a completion posted from another thread would land at no fixed instruction.</summary>
    public const string SynchronousOption = "sync";

    public static IVirtioDevice Blk(string options)
    {
        var parts = options.Split(',');
        if (parts[0].Length == 0) throw new ArgumentException("virtio-blk needs an image path: virtio-blk,PATH[,ro][,serial=ID]");
        var (readOnly, synchronous) = (false, false);
        string? serial = null;
        foreach (var p in parts.Skip(1))
        {
            if (p == "ro") readOnly = true;
            else if (p == SynchronousOption) synchronous = true;
            else if (p.StartsWith("serial=", StringComparison.Ordinal) && p.Length > 7 && p.Length <= 7 + BlkSpec.IdBytes) serial = p[7..];
            else throw new ArgumentException($"virtio-blk,{options}: unknown option '{p}' (ro, sync, serial=ID of at most {BlkSpec.IdBytes} characters)");
        }
        return Open("virtio-blk", parts[0], () => new VirtioBlk(new VirtioBlkOptions(parts[0], readOnly, serial, SynchronousIo: synchronous)));
    }

    public static IVirtioDevice Rng(string options) =>
        options.Length == 0 ? new VirtioRng() : throw new ArgumentException($"virtio-rng takes no options ('{options}')");

    /// <summary>virtio-console,socket=PATH (the VM listens there) or virtio-console,stdio.</summary>
    public static IVirtioDevice Console(string options)
    {
        if (options == "stdio") return new VirtioConsole(new StdioConsoleBackend());
        if (options.StartsWith("socket=", StringComparison.Ordinal) && options.Length > 7)
            return Open("virtio-console", options[7..], () => new VirtioConsole(new UnixSocketConsoleBackend(options[7..])));
        throw new ArgumentException($"virtio-console,{options}: expected socket=PATH or stdio");
    }

    /// <summary>virtio-net,tap=NAME[,netns=NS][,mac=MAC] or virtio-net,switch=NAME[,mac=MAC] (NICs naming one switch meet on it).</summary>
    public static IVirtioDevice Net(string options)
    {
        string? tap = null, netns = null, sw = null;
        byte[]? mac = null;
        foreach (var p in options.Split(','))
        {
            var eq = p.IndexOf('=');
            var (key, value) = eq < 0 ? (p, "") : (p[..eq], p[(eq + 1)..]);
            switch (key)
            {
                case "tap" when value.Length > 0: tap = value; break;
                case "netns" when value.Length > 0: netns = value; break;
                case "switch" when value.Length > 0: sw = value; break;
                case "mac" when MacAddress.TryParse(value, out var m): mac = m; break;
                default: throw new ArgumentException($"virtio-net,{options}: bad option '{p}' (tap=NAME[,netns=NS] or switch=NAME, and mac=aa:bb:cc:dd:ee:ff)");
            }
        }
        if ((tap is null) == (sw is null)) throw new ArgumentException($"virtio-net,{options}: give exactly one of tap=NAME or switch=NAME");
        if (netns is not null && tap is null) throw new ArgumentException($"virtio-net,{options}: netns= goes with tap=");
        mac ??= MacAddress.Random();
        INetBackend backend = tap is not null ? Open("virtio-net", $"TAP {tap}", () => TapBackend.Open(tap, netns)) : NetSwitch.Shared(sw!).CreatePort();
        return new VirtioNet(backend, mac);
    }

    private static T Open<T>(string device, string what, Func<T> open)
    {
        try { return open(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            throw new ArgumentException($"{device}: cannot open {what}: {e.Message}", e);
        }
    }
}
