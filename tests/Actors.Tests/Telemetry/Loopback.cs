using System.Net;
using System.Net.Sockets;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>Ports on 127.0.0.1.</summary>
public static class Loopback
{
    /// <summary>A TCP port free on 127.0.0.1 now (the OS's pick; another program may take it before the caller binds it).</summary>
    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
