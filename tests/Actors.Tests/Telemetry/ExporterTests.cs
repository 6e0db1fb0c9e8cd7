using System.Net;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Actorvisor.Host.Telemetry;
using Actorvisor.Host.Vm;
using Actorvisor.TestSupport;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>The exporters on their wires: the Prometheus scrape endpoint, OTLP/HTTP, Prometheus itself.</summary>
[Collection(TelemetryCollection.Name)]
public class ExporterTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    /// <summary>Starts <see cref="BusyGuest"/> as VM <paramref name="vm"/>; the caller stops it.</summary>
    private (IActorRef Vm, string Kernel) StartBusy(string vm)
    {
        var path = GuestImages.WriteTemp(BusyGuest.Kernel(), ".elf");
        return (Sys.ActorOf(VmSupervisor.Props(new VmConfig(vm, 16 << 20, path, new MemoryStream()), TestActor), "vm-" + vm), path);
    }

    private void Stop(IActorRef vm, string kernel)
    {
        Sys.Stop(vm);
        ExpectMsg<VmProtocol.VmExited>(Wait);
        File.Delete(kernel);
    }

    [Fact]
    public async Task ThePrometheusEndpointOnLoopbackServesTheMetricNamesWhileAGuestRuns()
    {
        var port = Loopback.FreePort();
        var (vm, kernel) = StartBusy("tele-prom");
        try
        {
            using var session = TelemetrySession.Start(new TelemetryOptions { Metrics = new IPEndPoint(IPAddress.Loopback, port) });
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            string[] names = ["actorvisor_vcpu_exits_total", "actorvisor_device_accesses_total", "actorvisor_vcpu_time_seconds_total",
                "actorvisor_mailbox_depth", "actorvisor_exit_duration_seconds_bucket"];
            string text = "";
            var deadline = DateTime.UtcNow + Wait;
            // Other tests' VMs may already be in the counts: wait for this VM's series.
            bool Ready() => names.All(text.Contains) &&
                            text.Split('\n').Any(l => l.Contains("vm_name=\"tele-prom\"") && l.Contains("device_name=\"uart-0\""));
            while (DateTime.UtcNow < deadline)
            {
                text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
                if (Ready()) break;
                await Task.Delay(200);
            }
            foreach (var name in names) Assert.Contains(name, text);
            Assert.Contains("vm_name=\"tele-prom\"", text);
            Assert.Contains("device_name=\"uart-0\"", text);
        }
        finally
        {
            Stop(vm, kernel);
        }
        // The listener went with the session.
        using var after = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await Assert.ThrowsAnyAsync<Exception>(() => after.GetStringAsync($"http://127.0.0.1:{port}/metrics"));
    }

    [Fact]
    public async Task OtlpOverHttpDeliversTracesAndMetricsToTheirPaths()
    {
        var port = Loopback.FreePort();
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        var received = new List<(string Path, string ContentType, int Bytes)>();
        using var stop = new CancellationTokenSource();
        var serve = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                HttpListenerContext ctx;
                try
                {
                    ctx = await listener.GetContextAsync().WaitAsync(stop.Token);
                }
                catch (Exception)
                {
                    return;
                }
                using var body = new MemoryStream();
                await ctx.Request.InputStream.CopyToAsync(body);
                lock (received) received.Add((ctx.Request.Url!.AbsolutePath, ctx.Request.ContentType ?? "", (int)body.Length));
                ctx.Response.StatusCode = 200;
                ctx.Response.ContentType = "application/x-protobuf";
                ctx.Response.Close();
            }
        });
        var (vm, kernel) = StartBusy("tele-otlp");
        try
        {
            using (var session = TelemetrySession.Start(new TelemetryOptions
                   {
                       Otlp = new Uri($"http://127.0.0.1:{port}"), Trace = "io.uart*", SampleRatio = 0.01,
                       OtlpMetricsInterval = TimeSpan.FromMilliseconds(500),
                   }))
            {
                await Task.Delay(1500);
                session.Flush();
            }
            AwaitAssert(() =>
            {
                lock (received)
                {
                    Assert.Contains(received, r => r.Path == "/v1/traces" && r.ContentType.StartsWith("application/x-protobuf") && r.Bytes > 0);
                    Assert.Contains(received, r => r.Path == "/v1/metrics" && r.ContentType.StartsWith("application/x-protobuf") && r.Bytes > 0);
                }
            }, TimeSpan.FromSeconds(10));
        }
        finally
        {
            stop.Cancel();
            listener.Stop();
            await serve;
            Stop(vm, kernel);
        }
    }

    /// <summary>
    /// The small guest's exits reach Debian's Prometheus through our endpoint: a quick check that needs no Linux guest.
    /// LinuxPrometheusTests does the same for a Debian Linux boot.
    /// </summary>
    [SkippableFact]
    public async Task DebiansPrometheusScrapesOurEndpointAndSeesANonZeroExitRate()
    {
        Skip.If(PrometheusServer.SkipReason is not null, PrometheusServer.SkipReason);
        var ours = Loopback.FreePort();
        using var session = TelemetrySession.Start(new TelemetryOptions { Metrics = new IPEndPoint(IPAddress.Loopback, ours) });
        using var prometheus = PrometheusServer.Start(ours);
        var (vm, kernel) = StartBusy("tele-prometheus");
        try
        {
            await prometheus.WaitReadyAsync(TimeSpan.FromSeconds(30));
            const string query = "sum(rate(actorvisor_vcpu_exits_total{vm_name=\"tele-prometheus\",exit_reason=\"pio\"}[5s]))";
            double rate = 0;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
            while (DateTime.UtcNow < deadline && rate <= 0)
            {
                await Task.Delay(1000);
                rate = await prometheus.QueryAsync(query) ?? 0;
            }
            Assert.True(rate > 0, $"Prometheus saw no exit rate for the running guest; its log:\n{prometheus.Log}");
        }
        finally
        {
            Stop(vm, kernel);
        }
    }
}
