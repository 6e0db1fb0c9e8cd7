using System.Diagnostics;
using Actorvisor.Host.Telemetry;
using Actorvisor.Kernel.Telemetry;
using static Actorvisor.Host.Vm.VmControl;

namespace Actorvisor.Host.Vm;

/// <summary>
/// The control verb <c>telemetry</c> (what <c>actorvisor top</c> polls): the VM's counters as a
/// <see cref="LiveSnapshot"/>, with each vCPU's state and instruction count asked of its thread. The first
/// request takes a counting lease (<see cref="TraceSwitches.CountingLease"/>), so per-device access counts are
/// kept from then on even without a metrics exporter; the lease ends with this supervisor.
/// </summary>
public sealed partial class VmSupervisor
{
    private IDisposable? _countingLease;

    private Task<Reply> TelemetryCommand()
    {
        _countingLease ??= TraceSwitches.CountingLease();
        var name = _config.Name;
        return AskAllCpus(cpu => (cpu.WaitingForSipi ? "wait-for-sipi" : cpu.Halted ? "halted" : "running", cpu.InstructionCount), results =>
        {
            var cpus = results.ToDictionary(r => r.VcpuId, r => r.Value is ValueTuple<string, long> v
                ? (r.ThreadState == "Paused" ? "paused" : v.Item1, v.Item2)
                : (r.ThreadState.ToLowerInvariant(), 0L));
            var seconds = (double)Stopwatch.GetTimestamp() / Stopwatch.Frequency;
            var snapshot = LiveSnapshot.Take(name, seconds, cpus, Actorvisor.Actors.Devices.MailboxDepth.Of(name));
            return Reply.Success(snapshot.ToJson());
        });
    }
}
