using System.Diagnostics;
using Akka.TestKit.Xunit2;
using Actorvisor.Host.Telemetry;
using Actorvisor.Host.Vm;
using Actorvisor.Kernel.Telemetry;
using Actorvisor.TestSupport;
using OpenTelemetry.Trace;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>An interrupt's trace across the actors, exported to the in-memory exporter.</summary>
[Collection(TelemetryCollection.Name)]
public class InterruptTraceTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private (List<Activity> Spans, VmProtocol.VmExited Exit, string Console) RunGuest(string vm, TelemetryOptions options)
    {
        var spans = new List<Activity>();
        var path = GuestImages.WriteTemp(TelemetryGuest.Kernel(), ".elf");
        try
        {
            var console = new MemoryStream();
            using (var session = TelemetrySession.Start(options, b => b.AddInMemoryExporter(spans)))
            {
                Sys.ActorOf(VmSupervisor.Props(new VmConfig(vm, 16 << 20, path, console), TestActor), "vm-" + vm);
                var exit = ExpectMsg<VmProtocol.VmExited>(Wait);
                session.Flush();
                lock (spans) return (spans.Where(s => s.GetTagItem(TelemetryAttributes.VmName) as string == vm).ToList(), exit,
                    System.Text.Encoding.ASCII.GetString(console.ToArray()));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TheUartsInterruptIsOneTraceFromTheLineThroughRoutingLapicAndInjectionToTheEoi()
    {
        var (spans, exit, console) = RunGuest("tele-irq", new TelemetryOptions { Trace = "irq.*" });
        Assert.Equal(VmExitCode.Halted, exit.Code);
        Assert.Equal("IRQ\n", console);

        var root = Assert.Single(spans, s => s.DisplayName == SpanNames.Interrupt && (string?)s.GetTagItem(TelemetryAttributes.DeviceName) == "uart-0");
        var trace = spans.Where(s => s.TraceId == root.TraceId && s != root).OrderBy(s => s.StartTimeUtc).ToList();
        Assert.All(trace, s => Assert.Equal(root.SpanId, s.ParentSpanId));
        Assert.Equal(4, root.GetTagItem(TelemetryAttributes.IrqGsi));
        Assert.Equal(TelemetryGuest.Vector, root.GetTagItem(TelemetryAttributes.IrqVector));

        var raise = Assert.Single(trace, s => s.DisplayName == SpanNames.Raise);
        var route = Assert.Single(trace, s => s.DisplayName == SpanNames.Route && (string?)s.GetTagItem(TelemetryAttributes.DeviceName) == "ioapic");
        var accept = Assert.Single(trace, s => s.DisplayName == SpanNames.Accept);
        var inject = Assert.Single(trace, s => s.DisplayName == SpanNames.Inject);
        var eoi = Assert.Single(trace, s => s.DisplayName == SpanNames.Eoi);
        // The 8259 saw the same line change, masked: its route span says nothing went out.
        var picRoute = Assert.Single(trace, s => s.DisplayName == SpanNames.Route && (string?)s.GetTagItem(TelemetryAttributes.DeviceName) == "pic");
        Assert.Equal(false, picRoute.GetTagItem(TelemetryAttributes.IrqDelivered));

        // In order: each step starts no earlier than the one that caused it.
        var steps = new[] { raise, route, accept, inject, eoi };
        for (var i = 1; i < steps.Length; i++)
            Assert.True(steps[i - 1].StartTimeUtc <= steps[i].StartTimeUtc, $"{steps[i - 1].DisplayName} after {steps[i].DisplayName}");
        Assert.True(root.StartTimeUtc <= raise.StartTimeUtc);
        Assert.True(root.StartTimeUtc + root.Duration >= eoi.StartTimeUtc, "the root ends with the EOI");

        Assert.Equal("uart-0", raise.GetTagItem(TelemetryAttributes.DeviceName));
        Assert.Equal(4, raise.GetTagItem(TelemetryAttributes.IrqGsi));
        Assert.Equal(4, route.GetTagItem(TelemetryAttributes.IrqGsi));
        Assert.Equal(TelemetryGuest.Vector, route.GetTagItem(TelemetryAttributes.IrqVector));
        Assert.Equal("edge", route.GetTagItem(TelemetryAttributes.IrqTrigger));
        Assert.Equal(true, route.GetTagItem(TelemetryAttributes.IrqDelivered));
        foreach (var s in new[] { accept, inject, eoi })
        {
            Assert.Equal(0, s.GetTagItem(TelemetryAttributes.VcpuId));
            Assert.Equal(TelemetryGuest.Vector, s.GetTagItem(TelemetryAttributes.IrqVector));
        }
        Assert.Equal("edge", accept.GetTagItem(TelemetryAttributes.IrqTrigger));
        Assert.True(inject.GetTagItem(TelemetryAttributes.IrqLatency) is double us && us >= 0);
        Assert.All(spans.Where(s => s.TraceId == root.TraceId), s => Assert.Equal("tele-irq", s.GetTagItem(TelemetryAttributes.VmName)));
    }

    [Fact]
    public void WithIrqClassesOffNoInterruptSpanIsMadeButIoSpansOfTheNamedDeviceAre()
    {
        var (spans, exit, _) = RunGuest("tele-io", new TelemetryOptions { Trace = "io.uart*" });
        Assert.Equal(VmExitCode.Halted, exit.Code);
        Assert.DoesNotContain(spans, s => s.DisplayName.StartsWith("irq", StringComparison.Ordinal));
        var io = spans.Where(s => s.DisplayName is SpanNames.IoRead or SpanNames.IoWrite).ToList();
        Assert.All(io, s => Assert.Equal("uart-0", s.GetTagItem(TelemetryAttributes.DeviceName)));
        Assert.Equal(TelemetryGuest.UartWrites, io.Count(s => s.DisplayName == SpanNames.IoWrite));
        Assert.Equal(TelemetryGuest.UartReads, io.Count(s => s.DisplayName == SpanNames.IoRead));
        var scratch = io.First(s => s.DisplayName == SpanNames.IoRead && (int?)s.GetTagItem(TelemetryAttributes.IoPort) == GuestImages.Com1 + 7);
        Assert.Equal(0, scratch.GetTagItem(TelemetryAttributes.VcpuId));
        Assert.Equal("read", scratch.GetTagItem(TelemetryAttributes.IoDirection));
    }

    [Fact]
    public void AtASampleRatioOfAQuarterAboutAQuarterOfTheAccessesAreTraced()
    {
        var (spans, exit, _) = RunGuest("tele-sample", new TelemetryOptions { Trace = "io.uart-0", SampleRatio = 0.25 });
        Assert.Equal(VmExitCode.Halted, exit.Code);
        var n = spans.Count(s => s.DisplayName is SpanNames.IoRead or SpanNames.IoWrite);
        // 158 accesses, each kept with p = 0.25: mean 39.5, sd 5.4; 15..64 is beyond 4.5 sd either side.
        var total = TelemetryGuest.UartReads + TelemetryGuest.UartWrites;
        Assert.InRange(n, 15, 64);
        Assert.True(n < total);
    }
}
