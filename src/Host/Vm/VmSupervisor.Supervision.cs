using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Event;
using Actorvisor.Actors.Cpu;
using static Actorvisor.Host.Vm.VmControl;

namespace Actorvisor.Host.Vm;

/// <summary>
/// Device supervision (DESIGN.md, "Faults and supervision"): a device actor that throws is stopped (the VM
/// ends, the default), resumed, restarted, or escalated (the VM is suspended and a state dump of every
/// vCPU's registers is written) as <see cref="VmConfig.Supervision"/> says for it. vCPU actors always stop.
/// Every device failure is counted and shown by `stats`.
/// </summary>
public sealed partial class VmSupervisor
{
    private sealed record DeviceFailed(string Device, DevicePolicy Policy, string Error);
    private sealed record DumpReady(string Device, string Error, JsonObject Dump);

    private readonly List<DeviceFailed> _deviceFailures = new();

    private sealed class DeviceSupervisorStrategy(VmSupervisor vm) : OneForOneStrategy(_ => Directive.Stop, loggingEnabled: false)
    {
        protected override Directive Handle(IActorRef child, Exception exception)
        {
            var name = child.Path.Name;
            var policy = name.StartsWith("cpu-", StringComparison.Ordinal) ? DevicePolicy.Stop : vm._config.Supervision.For(name);
            if (policy == DevicePolicy.Stop)
            {
                vm._lastFailure = exception;
                return Directive.Stop;
            }
            // This runs while the supervisor handles the failure: the rest waits for a message of its own.
            vm.Self.Tell(new DeviceFailed(name, policy, $"{exception.GetType().Name}: {exception.Message}"));
            return policy is DevicePolicy.Restart or DevicePolicy.RestartPowerOn ? Directive.Restart : Directive.Resume;
        }
    }

    private void SupervisionControls()
    {
        Receive<DeviceFailed>(f =>
        {
            _deviceFailures.Add(f);
            var log = Context.GetLogger();
            log.Warning("vm {0}: device {1} failed ({2}); policy {3}", _config.Name, f.Device, f.Error, DeviceSupervision.NameOf(f.Policy));
            if (f.Policy != DevicePolicy.Escalate) return;
            // Suspend first, then read every vCPU's registers: the dump shows where the guest stood.
            if (_lifecycle.State == VmState.Running) BeginSuspend(ActorRefs.Nobody);
            AskAllCpus(cpu => CpuInspection.Registers(cpu), results => Reply.Success(new JsonObject
            {
                ["vcpus"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
                {
                    ["cpu"] = r.VcpuId, ["thread"] = r.ThreadState.ToLowerInvariant(), ["registers"] = r.Value as JsonObject,
                }).ToArray()),
            })).ContinueWith(t => new DumpReady(f.Device, f.Error, t.IsCompletedSuccessfully && t.Result.Ok ? t.Result.Result! : new JsonObject
            {
                ["error"] = t.IsCompletedSuccessfully ? t.Result.Error : "the vCPUs did not answer",
            })).PipeTo(Self);
        });
        Receive<DumpReady>(d =>
        {
            var dump = new JsonObject
            {
                ["vm"] = _config.Name,
                ["time"] = DateTime.UtcNow.ToString("O"),
                ["device"] = d.Device,
                ["error"] = d.Error,
                ["state"] = _lifecycle.State.Wire(),
                ["dump"] = d.Dump,
            };
            var directory = _config.DumpDirectory ?? Path.GetTempPath();
            var path = Path.Combine(directory, $"{_config.Name}-{d.Device}-{DateTime.UtcNow:yyyyMMddTHHmmssfff}.dump.json");
            try
            {
                Directory.CreateDirectory(directory);
                File.WriteAllText(path, dump.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                _dumps.Add(path);
                Context.GetLogger().Warning("vm {0}: suspended after {1} failed; state dump in {2}", _config.Name, d.Device, path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Context.GetLogger().Error("vm {0}: cannot write the state dump {1}: {2}", _config.Name, path, e.Message);
            }
        });
        Receive<CrashDevice>(m =>
        {
            var child = _children.FirstOrDefault(c => c.Path.Name == m.Device);
            if (child is null || m.Device.StartsWith("cpu-", StringComparison.Ordinal))
            {
                Sender.Tell(Reply.Fail($"no device '{m.Device}'; devices: {string.Join(", ", _children.Select(c => c.Path.Name).Where(n => !n.StartsWith("cpu-", StringComparison.Ordinal)).Order())}"));
                return;
            }
            // Kill makes the actor throw ActorKilledException in its own mailbox: a real failure for the strategy.
            child.Tell(Kill.Instance);
            Sender.Tell(Reply.Success(new JsonObject { ["device"] = m.Device, ["policy"] = DeviceSupervision.NameOf(_config.Supervision.For(m.Device)) }));
        });
    }

    private readonly List<string> _dumps = new();

    /// <summary>
    /// The register store of a device whose policy restarts it from its last consistent state (it outlives the
    /// device's actor instances); null for every other policy, so a device saves its registers only when that
    /// can matter.
    /// </summary>
    private Actorvisor.Actors.Devices.DeviceStateStore? StateFor(string device) =>
        _config.Supervision.For(device) == DevicePolicy.Restart ? new Actorvisor.Actors.Devices.DeviceStateStore() : null;

    /// <summary>Device failures so far, for `stats`.</summary>
    private JsonArray DeviceFailures() => new(_deviceFailures.Select(f => (JsonNode)new JsonObject
    {
        ["device"] = f.Device, ["policy"] = DeviceSupervision.NameOf(f.Policy), ["error"] = f.Error,
    }).ToArray());
}
