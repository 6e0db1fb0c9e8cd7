using Akka.TestKit.Xunit2;
using Actorvisor.Host.Telemetry;
using Actorvisor.Host.Vm;
using Actorvisor.Kernel.Telemetry;
using Actorvisor.TestSupport;
using OpenTelemetry.Metrics;

namespace Actorvisor.Actors.Tests.Telemetry;

/// <summary>Meter "Actorvisor" against the known accesses of <see cref="TelemetryGuest"/>.</summary>
[Collection(TelemetryCollection.Name)]
public class MetricsTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public void CountersMatchTheAccessesExitsAndInterruptsTheGuestMade()
    {
        const string vm = "tele-metrics";
        var exported = new List<Metric>();
        var path = GuestImages.WriteTemp(TelemetryGuest.Kernel(), ".elf");
        try
        {
            using var session = TelemetrySession.Start(new TelemetryOptions(), configureMetrics: b => b.AddInMemoryExporter(exported));
            Sys.ActorOf(VmSupervisor.Props(new VmConfig(vm, 16 << 20, path, new MemoryStream()), TestActor), "vm-" + vm);
            Assert.Equal(VmExitCode.Halted, ExpectMsg<VmProtocol.VmExited>(Wait).Code);
            session.Flush();
        }
        finally
        {
            File.Delete(path);
        }

        long Sum(string metric, params (string Key, object Value)[] tags)
        {
            long total = 0;
            foreach (var m in exported.Where(m => m.Name == metric))
                foreach (ref readonly var p in m.GetMetricPoints())
                {
                    var pointTags = new Dictionary<string, object?>();
                    foreach (var t in p.Tags) pointTags[t.Key] = t.Value;
                    if (!Equals(pointTags.GetValueOrDefault(TelemetryAttributes.VmName), vm)) continue;
                    if (tags.All(t => Equals(pointTags.GetValueOrDefault(t.Key), t.Value))) total = Math.Max(total, p.GetSumLong());
                }
            return total;
        }

        Assert.Equal(TelemetryGuest.UartWrites, Sum("actorvisor.device.accesses", (TelemetryAttributes.DeviceName, "uart-0"), (TelemetryAttributes.IoDirection, "write")));
        Assert.Equal(TelemetryGuest.UartReads, Sum("actorvisor.device.accesses", (TelemetryAttributes.DeviceName, "uart-0"), (TelemetryAttributes.IoDirection, "read")));
        Assert.Equal(TelemetryGuest.PicWrites, Sum("actorvisor.device.accesses", (TelemetryAttributes.DeviceName, "pic"), (TelemetryAttributes.IoDirection, "write")));
        Assert.Equal(TelemetryGuest.IoApicWrites, Sum("actorvisor.device.accesses", (TelemetryAttributes.DeviceName, "ioapic"), (TelemetryAttributes.IoDirection, "write")));
        Assert.Equal(TelemetryGuest.PicWrites + TelemetryGuest.UartWrites + TelemetryGuest.UartReads,
            Sum("actorvisor.vcpu.exits", (TelemetryAttributes.ExitReason, "pio"), (TelemetryAttributes.VcpuId, 0)));
        Assert.Equal(TelemetryGuest.IoApicWrites, Sum("actorvisor.vcpu.exits", (TelemetryAttributes.ExitReason, "mmio")));
        Assert.Equal(2, Sum("actorvisor.vcpu.exits", (TelemetryAttributes.ExitReason, "lapic"))); // SVR, EOI
        Assert.Equal(1, Sum("actorvisor.vcpu.exits", (TelemetryAttributes.ExitReason, "interrupt")));
        Assert.Equal(1, Sum("actorvisor.interrupts.injected", (TelemetryAttributes.IrqVector, TelemetryGuest.Vector)));
        Assert.Equal(1, Sum("actorvisor.interrupts.raised", (TelemetryAttributes.DeviceName, "uart-0"), (TelemetryAttributes.IrqGsi, 4)));

        // Read round trips are timed (posted writes are not): one histogram count per UART read. (Each export
        // is a cumulative snapshot, so the exporter's list holds the same point more than once: take the largest.)
        var durations = exported.Where(m => m.Name == "actorvisor.exit.duration").ToList();
        Assert.NotEmpty(durations);
        long pioTimed = 0;
        foreach (var m in durations)
            foreach (ref readonly var p in m.GetMetricPoints())
                foreach (var t in p.Tags)
                    if (t.Key == TelemetryAttributes.ExitReason && (string?)t.Value == "pio") pioTimed = Math.Max(pioTimed, p.GetHistogramCount());
        Assert.Equal(TelemetryGuest.UartReads, pioTimed);
        Assert.Contains(exported, m => m.Name == "actorvisor.vcpu.time");

        // Nothing is traced here (no trace exporter), yet the UART's one interrupt has its raise → injection time:
        // the raise time rides on the messages when metrics are collected.
        Assert.False(TraceSwitches.IsEnabled("irq.uart-0"));
        long latencyCount = 0;
        double latencySum = 0;
        foreach (var m in exported.Where(m => m.Name == "actorvisor.interrupt.latency"))
            foreach (ref readonly var p in m.GetMetricPoints())
            {
                var pointTags = new Dictionary<string, object?>();
                foreach (var t in p.Tags) pointTags[t.Key] = t.Value;
                if (!Equals(pointTags.GetValueOrDefault(TelemetryAttributes.VmName), vm)) continue;
                Assert.Equal(TelemetryGuest.Vector, Convert.ToInt32(pointTags[TelemetryAttributes.IrqVector]));
                if (p.GetHistogramCount() < latencyCount) continue;
                latencyCount = p.GetHistogramCount();
                latencySum = p.GetHistogramSum();
            }
        Assert.Equal(1, latencyCount);
        Assert.InRange(latencySum, 1e-7, Wait.TotalSeconds);

        // The same counts as one snapshot, the way a live view reads them.
        var snapshot = TelemetrySnapshot.Take(vm);
        Assert.Equal(TelemetryGuest.UartWrites, snapshot.Accesses[("uart-0", "write")]);
        Assert.Equal(TelemetryGuest.UartReads, snapshot.Accesses[("uart-0", "read")]);
        Assert.Equal(1, snapshot.InjectedByVector[TelemetryGuest.Vector]);
        Assert.Equal(1, snapshot.RaisedByGsi[4]);
        Assert.Equal(1, snapshot.ExitsByReason["interrupt"]);
        var cpu0 = Assert.Single(snapshot.Vcpus);
        Assert.True(cpu0.RunSeconds > 0 && cpu0.HaltSeconds > 0, $"{cpu0}");
    }
}
