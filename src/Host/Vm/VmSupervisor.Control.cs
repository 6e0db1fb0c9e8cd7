using System.Text.Json.Nodes;
using Akka.Actor;
using Actorvisor.Actors.Cpu;
using Actorvisor.Actors.Cpu.Lapic;
using Actorvisor.Actors.Devices.AcpiPm;
using Actorvisor.Actors.Devices.IsaIrq;
using Actorvisor.Actors.Devices.Rtc;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Host.Vm.VmControl;

namespace Actorvisor.Host.Vm;

/// <summary>
/// The supervisor's control face (<see cref="VmControl"/>): lifecycle requests go through the
/// <see cref="VmLifecycle"/> table; questions about a vCPU are asked of its run thread, which answers at an
/// instruction boundary; device requests go to the device actor. Long answers are piped back to the asker,
/// so the supervisor never blocks.
/// </summary>
public sealed partial class VmSupervisor
{
    /// <summary>How long a vCPU or device may take to answer a control request.</summary>
    public static readonly TimeSpan ControlTimeout = TimeSpan.FromSeconds(5);
    /// <summary>The IOAPIC's pins: the GSIs irq assert/deassert/pulse may name.</summary>
    public const int GsiCount = 24;

    private readonly VmLifecycle _lifecycle;
    private readonly IActorRef[] _vcpus;
    private VcpuLapic[] _lapics = [];
    private IActorRef? _rtc, _pm, _irqLines;
    /// <summary>Who waits for the suspend in progress.</summary>
    private readonly List<IActorRef> _suspendWaiters = new();

    private void Controls()
    {
        Receive<GetStatus>(_ => Sender.Tell(Reply.Success(Status())));
        Receive<Suspend>(_ => BeginSuspend(Sender));
        Receive<LifecycleProtocol.Suspended>(m =>
        {
            if (_lifecycle.CpuSuspended(m.VcpuId)) SuspendCompleted();
        });
        // A vCPU not running guest code (not started, shut down, failed) refuses; it is not active, so not waited for.
        Receive<LifecycleProtocol.NotAllowed>(_ =>
        {
            var id = Array.IndexOf(_vcpus, Sender);
            if (id >= 0 && _lifecycle.CpuInactive(id)) SuspendCompleted();
        });
        Receive<LifecycleProtocol.Resumed>(_ => { });
        Receive<Resume>(_ =>
        {
            if (_lifecycle.State == VmState.Running)
            {
                Sender.Tell(Reply.Success(Status()));
                return;
            }
            if (!_lifecycle.TryMove(VmState.Running, "resume requested", out var refusal))
            {
                Sender.Tell(Reply.Fail(refusal!));
                return;
            }
            foreach (var v in _vcpus) v.Tell(LifecycleProtocol.Resume.Instance);
            Sender.Tell(Reply.Success(Status()));
        });
        Receive<ForceReset>(_ =>
        {
            Sender.Tell(Reply.Success(new JsonObject { ["state"] = VmState.Resetting.Wire() }));
            Finish(VmExitCode.Reset, "force-reset from the control socket");
        });
        Receive<ForcePowerOff>(_ =>
        {
            Sender.Tell(Reply.Success(new JsonObject { ["state"] = VmState.PoweredOff.Wire() }));
            Finish(VmExitCode.PowerOff, "force-poweroff from the control socket");
        });
        Receive<PowerButton>(_ =>
        {
            _pm?.Tell(AcpiPmProtocol.PressPowerButton.Instance);
            Sender.Tell(Reply.Success(new JsonObject { ["pressed"] = "power button" }));
        });
        Receive<GetTopology>(_ =>
        {
            var t = _config.Topology;
            var apicIds = new JsonArray();
            for (var i = 0; i < t.Cpus; i++) apicIds.Add(t.ApicIdOf(i));
            Sender.Tell(Reply.Success(new JsonObject
            {
                ["cpus"] = t.Cpus, ["sockets"] = t.Sockets, ["cores"] = t.Cores, ["threads"] = t.Threads,
                ["maxcpus"] = t.MaxCpus, ["apic_ids"] = apicIds,
            }));
        });
        Receive<GetActiveCpus>(_ => AskAllCpus(cpu => cpu.WaitingForSipi, results => CpuList(results,
            r => r.ThreadState is "Running" or "Paused" && r.Value is false)).PipeTo(Sender));
        Receive<GetSuspendedCpus>(_ => AskAllCpus(_ => null, results => CpuList(results, r => r.ThreadState == "Paused")).PipeTo(Sender));
        Receive<GetRegs>(m => OnCpu(m.Cpu, cpu => CpuInspection.Registers(cpu)));
        Receive<SetReg>(m => OnCpu(m.Cpu, cpu => CpuInspection.SetRegister(cpu, m.Name, m.Value) is { } error
            ? error
            : new JsonObject { ["cpu"] = m.Cpu, ["register"] = m.Name.ToLowerInvariant(), ["value"] = Hex(m.Value) }));
        Receive<GetLapic>(m =>
        {
            if (CheckCpu(m.Cpu) is { } bad) Sender.Tell(Reply.Fail(bad));
            else
            {
                var lapic = _lapics[m.Cpu];
                OnCpu(m.Cpu, _ => CpuInspection.Lapic(lapic.Model));
            }
        });
        Receive<InjectNmi>(m =>
        {
            if (CheckCpu(m.Cpu) is { } bad) Sender.Tell(Reply.Fail(bad));
            else
            {
                var lapic = _lapics[m.Cpu];
                OnCpu(m.Cpu, cpu =>
                {
                    if (cpu.WaitingForSipi) return $"vcpu {m.Cpu} waits for SIPI, where NMIs are not recognized";
                    lapic.Nmi();
                    return new JsonObject { ["cpu"] = m.Cpu, ["injected"] = "nmi" };
                });
            }
        });
        Receive<Irq>(m =>
        {
            if (m.Gsi is < 0 or >= GsiCount || _isaIrq is null)
            {
                Sender.Tell(Reply.Fail($"no GSI {m.Gsi}: the IOAPIC has GSIs 0-{GsiCount - 1}"));
                return;
            }
            _isaIrq.Tell(m.Action switch
            {
                IrqAction.Pulse => new InterruptProtocol.PulseIrq(m.Gsi),
                _ => new InterruptProtocol.SetIrq(m.Gsi, m.Action == IrqAction.Assert),
            }, Self);
            Sender.Tell(Reply.Success(new JsonObject { ["gsi"] = m.Gsi, ["action"] = m.Action.ToString().ToLowerInvariant() }));
        });
        Receive<GetRtcTime>(_ => AskDevice<RtcProtocol.Status>(_rtc, RtcProtocol.GetStatus.Instance, RtcTime).PipeTo(Sender));
        Receive<SetRtcTime>(m =>
        {
            DateTime utc;
            try
            {
                utc = DateTimeOffset.FromUnixTimeSeconds(m.UnixSeconds).UtcDateTime;
            }
            catch (ArgumentOutOfRangeException)
            {
                Sender.Tell(Reply.Fail($"{m.UnixSeconds} is not a time the RTC can hold (years 1-9999)"));
                return;
            }
            AskDevice<RtcProtocol.Status>(_rtc, new RtcProtocol.SetTime(utc), RtcTime).PipeTo(Sender);
        });
        Receive<GetNvram>(m => AskDevice<object>(_rtc, new RtcProtocol.ReadNvram(m.Offset), NvramReply).PipeTo(Sender));
        Receive<SetNvram>(m => AskDevice<object>(_rtc, new RtcProtocol.WriteNvram(m.Offset, m.Value), NvramReply).PipeTo(Sender));
        Receive<GetStats>(_ => Stats().PipeTo(Sender));
        Receive<GetTelemetry>(_ => TelemetryCommand().PipeTo(Sender));
        Receive<FaultRules>(m => Sender.Tell(FaultsCommand(m)));
        Receive<Trace>(m => Sender.Tell(TraceCommand(m)));
        SupervisionControls();
        CapControls();
    }

    /// <summary>`ctl NAME faults ...`: the run's fault engine (it exists for every run, idle without rules).</summary>
    private Reply FaultsCommand(FaultRules m)
    {
        if (Faults is not { } engine) return Reply.Fail("this VM has no fault engine");
        switch (m.Action)
        {
            case FaultsAction.Clear:
                engine.Clear();
                break;
            case FaultsAction.Pause or FaultsAction.Resume:
                engine.Pause(m.Action == FaultsAction.Pause);
                break;
            case FaultsAction.Remove when !engine.Remove(m.Name!):
                return Reply.Fail($"no fault rule is named '{m.Name}'");
            case FaultsAction.Add:
                try
                {
                    var rule = Actorvisor.Host.Faults.FaultScenario.ParseRule(m.Rule!, "faults add");
                    var problems = rule.Validate(FaultDeviceNames()).ToArray();
                    if (problems.Length > 0) return Reply.Fail(string.Join("; ", problems));
                    engine.Add(rule);
                }
                catch (Exception e) when (e is FormatException or ArgumentException)
                {
                    return Reply.Fail(e.Message);
                }
                break;
        }
        var rules = new System.Text.Json.Nodes.JsonArray();
        var report = engine.Report().ToDictionary(r => r.Rule);
        foreach (var rule in engine.Rules)
        {
            var r = report[rule.Name];
            var o = new JsonObject
            {
                ["name"] = rule.Name,
                ["target"] = $"{rule.Target.Device ?? "*"} {(rule.Target.Kind is { } k ? Actorvisor.Kernel.Faults.FaultPoint.KindName(k) : "any")}" +
                             (rule.Target.From is { } f ? $" 0x{f:x}-0x{rule.Target.To ?? f:x}" : ""),
                ["action"] = rule.Action.Verdict.ToString().ToLowerInvariant(),
                ["matched"] = r.Matched,
                ["fired"] = r.Fired,
            };
            if (r.FirstFired is { } first) (o["first_s"], o["last_s"]) = (first.TotalSeconds, r.LastFired!.Value.TotalSeconds);
            rules.Add(o);
        }
        return Reply.Success(new JsonObject
        {
            ["seed"] = engine.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["state"] = engine.State,
            ["paused"] = engine.Paused,
            ["rules"] = rules,
        });
    }

    /// <summary>`ctl NAME trace [CLASSES [SAMPLE]]`: the process's traced classes (they are shared by its VMs).</summary>
    private static Reply TraceCommand(Trace m)
    {
        var control = Actorvisor.Kernel.Telemetry.TraceControl.Instance;
        try
        {
            if (m.Sample is { } ratio)
            {
                if (ratio is < 0 or > 1 or double.NaN) return Reply.Fail($"sample ratio {ratio} is not between 0 and 1");
                control.SetSampleRatio(ratio);
            }
            if (m.Classes is { } classes) control.SetClasses(classes);
        }
        catch (FormatException e)
        {
            return Reply.Fail(e.Message);
        }
        var status = control.Status();
        return Reply.Success(new JsonObject
        {
            ["classes"] = status.Patterns, ["sample"] = status.SampleRatio, ["metrics"] = status.Metrics,
        });
    }

    /// <summary>While ending, every control request is answered, with the reason it cannot be served.</summary>
    private void RefuseControls() =>
        Receive<Command>(c => Sender.Tell(c is GetStatus
            ? Reply.Success(Status())
            : Reply.Fail($"the VM is {_lifecycle.State.Wire()}: it is shutting down")));

    private JsonObject Status() => new()
    {
        ["name"] = _config.Name,
        ["state"] = _lifecycle.State.Wire(),
        ["cpus"] = _config.Topology.Cpus,
        ["memory"] = _config.MemorySize,
        ["pid"] = Environment.ProcessId,
    };

    private void BeginSuspend(IActorRef asker)
    {
        switch (_lifecycle.State)
        {
            case VmState.Suspended:
                asker.Tell(Reply.Success(SuspendResult()));
                return;
            case VmState.Suspending:
                _suspendWaiters.Add(asker);
                return;
        }
        _suspendWaiters.Add(asker);
        if (!_lifecycle.BeginSuspend(Enumerable.Range(0, _vcpus.Length), "suspend requested", out var refusal))
        {
            if (refusal is not null)
            {
                _suspendWaiters.Remove(asker);
                asker.Tell(Reply.Fail(refusal));
                return;
            }
            // Waiting: each vCPU answers Suspended (or NotAllowed) from its run thread.
            foreach (var v in _vcpus) v.Tell(new LifecycleProtocol.Suspend("control request"));
            return;
        }
        SuspendCompleted();
    }

    private void SuspendCompleted()
    {
        var result = SuspendResult();
        foreach (var w in _suspendWaiters) w.Tell(Reply.Success(result));
        _suspendWaiters.Clear();
    }

    private JsonObject SuspendResult() => new()
    {
        ["state"] = _lifecycle.State.Wire(),
        ["suspended_cpus"] = new JsonArray(_lifecycle.SuspendedCpus.Select(c => (JsonNode)c).ToArray()),
    };

    private string? CheckCpu(int cpu) =>
        cpu >= 0 && cpu < _vcpus.Length && _vcpus[cpu] is not null ? null
            : $"no vcpu {cpu}: this VM has {_vcpus.Length} (0-{_vcpus.Length - 1})";

    /// <summary>
    /// Runs <paramref name="work"/> on vCPU <paramref name="cpu"/>'s thread and pipes the answer to the sender:
    /// a JsonObject is the result, a string an error.
    /// </summary>
    private void OnCpu(int cpu, Func<Actorvisor.Kernel.Cpu.SoftwareCpu, object?> work)
    {
        if (CheckCpu(cpu) is { } bad)
        {
            Sender.Tell(Reply.Fail(bad));
            return;
        }
        _vcpus[cpu].Ask<VcpuProtocol.OnThreadResult>(new VcpuProtocol.OnThread(work), ControlTimeout)
            .ContinueWith(t => t.IsCompletedSuccessfully
                ? t.Result switch
                {
                    { Error: { } e } => Reply.Fail($"vcpu {cpu}: {e}"),
                    { Value: JsonObject o } => Reply.Success(o),
                    { Value: string e } => Reply.Fail(e),
                    _ => Reply.Fail($"vcpu {cpu} gave no answer"),
                }
                : Reply.Fail($"vcpu {cpu} did not answer within {ControlTimeout.TotalSeconds:0} s"))
            .PipeTo(Sender);
    }

    private Task<Reply> AskAllCpus(Func<Actorvisor.Kernel.Cpu.SoftwareCpu, object?> work,
        Func<VcpuProtocol.OnThreadResult[], Reply> combine)
    {
        var asks = _vcpus.Where(v => v is not null)
            .Select(v => v.Ask<VcpuProtocol.OnThreadResult>(new VcpuProtocol.OnThread(work), ControlTimeout)).ToArray();
        return Task.WhenAll(asks).ContinueWith(t => t.IsCompletedSuccessfully
            ? combine(t.Result)
            : Reply.Fail($"a vcpu did not answer within {ControlTimeout.TotalSeconds:0} s"));
    }

    private static Reply CpuList(VcpuProtocol.OnThreadResult[] results, Func<VcpuProtocol.OnThreadResult, bool> pick) =>
        Reply.Success(new JsonObject
        {
            ["cpus"] = new JsonArray(results.Where(pick).Select(r => (JsonNode)r.VcpuId).ToArray()),
        });

    private static Task<Reply> AskDevice<T>(IActorRef? device, object message, Func<T, Reply> map)
    {
        if (device is null) return Task.FromResult(Reply.Fail("the device is not there"));
        return device.Ask<T>(message, ControlTimeout).ContinueWith(t => t.IsCompletedSuccessfully
            ? map(t.Result)
            : Reply.Fail($"{device.Path.Name} did not answer within {ControlTimeout.TotalSeconds:0} s"));
    }

    private static Reply RtcTime(RtcProtocol.Status s) => Reply.Success(new JsonObject
    {
        ["unix"] = new DateTimeOffset(s.GuestTime).ToUnixTimeSeconds(),
        ["utc"] = s.GuestTime.ToString("yyyy-MM-ddTHH:mm:ssZ"),
    });

    private static Reply NvramReply(object answer) => answer switch
    {
        RtcProtocol.NvramByte b => Reply.Success(new JsonObject { ["offset"] = Hex((ulong)b.Offset), ["value"] = Hex(b.Value) }),
        RtcProtocol.NvramRefused r => Reply.Fail($"offset 0x{r.Offset:x}: {r.Reason}"),
        _ => Reply.Fail("unexpected answer from the RTC"),
    };

    /// <summary>Per vCPU: instructions retired, run-thread state, accesses that hit no device; per GSI: level and times raised.</summary>
    private Task<Reply> Stats()
    {
        var status = Status();
        var failures = DeviceFailures();
        var cpus = AskAllCpus(cpu => new JsonObject
        {
            ["instructions"] = cpu.InstructionCount,
            ["halted"] = cpu.Halted,
            ["wait_for_sipi"] = cpu.WaitingForSipi,
        }, r => Reply.Success(new JsonObject
        {
            ["vcpus"] = new JsonArray(r.Select(x =>
            {
                var o = (JsonObject)x.Value!;
                o["cpu"] = x.VcpuId;
                o["thread"] = x.ThreadState.ToLowerInvariant();
                return (JsonNode)o;
            }).ToArray()),
        }));
        var counters = Task.WhenAll(_vcpus.Where(v => v is not null)
            .Select(v => v.Ask<VcpuProtocol.Counters>(VcpuProtocol.GetCounters.Instance, ControlTimeout)));
        var lines = _irqLines is null
            ? Task.FromResult<IrqLinesActor.Lines?>(null)
            : _irqLines.Ask<IrqLinesActor.Lines>(IrqLinesActor.GetLines.Instance, ControlTimeout).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null);
        return Task.WhenAll(cpus, counters, lines).ContinueWith(_ =>
        {
            if (!cpus.IsCompletedSuccessfully || !cpus.Result.Ok) return cpus.IsCompletedSuccessfully ? cpus.Result : Reply.Fail("a vcpu did not answer");
            var result = new JsonObject { ["name"] = status["name"]!.DeepClone(), ["state"] = status["state"]!.DeepClone() };
            var vcpus = (JsonArray)cpus.Result.Result!["vcpus"]!.DeepClone();
            if (counters.IsCompletedSuccessfully)
                foreach (var c in counters.Result)
                {
                    var o = vcpus.OfType<JsonObject>().FirstOrDefault(v => (int)v["cpu"]! == c.VcpuId);
                    if (o is null) continue;
                    o["unassigned_port_reads"] = c.UnassignedPortReads;
                    o["unassigned_port_writes"] = c.UnassignedPortWrites;
                    o["unassigned_mmio_reads"] = c.UnassignedMmioReads;
                    o["unassigned_mmio_writes"] = c.UnassignedMmioWrites;
                    o["exits"] = new JsonObject(c.Exits.OrderBy(e => e.Key).Select(e => KeyValuePair.Create(e.Key, (JsonNode?)e.Value)));
                    o["accesses"] = new JsonObject(c.Accesses.OrderBy(a => a.Key).Select(a => KeyValuePair.Create(a.Key,
                        (JsonNode?)new JsonObject { ["reads"] = a.Value.Reads, ["writes"] = a.Value.Writes })));
                }
            result["vcpus"] = vcpus;
            var irqs = new JsonObject();
            if (lines.Result is { } l)
                foreach (var (gsi, (level, raised)) in l.ByGsi.OrderBy(kv => kv.Key))
                    irqs[gsi.ToString()] = new JsonObject { ["level"] = level, ["raised"] = raised };
            result["irqs"] = irqs;
            result["device_failures"] = failures;
            return Reply.Success(result);
        });
    }
}
