using System.Text.Json.Nodes;
using Akka.Actor;
using Actorvisor.Actors.Cpu;
using Actorvisor.Kernel.Messages;
using static Actorvisor.Host.Vm.VmControl;

namespace Actorvisor.Host.Vm;

/// <summary>
/// `ctl NAME getcap CPU [CAP]` and `setcap CPU CAP on|off`: bhyve's vCPU capabilities, answered by the vCPU's
/// run thread (<see cref="VcpuCapabilities"/> says what each maps to here).
/// </summary>
public sealed partial class VmSupervisor
{
    private void CapControls()
    {
        Receive<GetCap>(m =>
        {
            if (CheckCpu(m.Cpu) is { } bad)
            {
                Sender.Tell(Reply.Fail(bad));
                return;
            }
            if (m.Name is { } name && VcpuCapabilities.Find(name) is null)
            {
                Sender.Tell(Reply.Fail($"unknown capability '{name}'; known: {VcpuCapabilities.Names}"));
                return;
            }
            if (m.Name is not null && VcpuCapabilities.Find(m.Name) is { Support: VcpuCapabilities.Support.Unsupported } unsupported)
            {
                Sender.Tell(Reply.Fail($"capability '{m.Name}' is not available on vcpu {m.Cpu}: {unsupported.Meaning}"));
                return;
            }
            _vcpus[m.Cpu].Ask<VcpuProtocol.CapValues>(VcpuProtocol.GetCaps.Instance, ControlTimeout)
                .ContinueWith(t => t.IsCompletedSuccessfully ? CapsReply(m, t.Result) : Reply.Fail($"vcpu {m.Cpu} did not answer within {ControlTimeout.TotalSeconds:0} s"))
                .PipeTo(Sender);
        });
        Receive<SetCap>(m =>
        {
            if (CheckCpu(m.Cpu) is { } bad)
            {
                Sender.Tell(Reply.Fail(bad));
                return;
            }
            _vcpus[m.Cpu].Ask<object>(new VcpuProtocol.SetCap(m.Name, m.On), ControlTimeout)
                .ContinueWith(t => !t.IsCompletedSuccessfully
                    ? Reply.Fail($"vcpu {m.Cpu} did not answer within {ControlTimeout.TotalSeconds:0} s")
                    : t.Result switch
                    {
                        VcpuProtocol.CapSet s => Reply.Success(new JsonObject
                        {
                            ["cpu"] = s.VcpuId, ["cap"] = s.Name, ["value"] = s.On ? "on" : "off",
                        }),
                        LifecycleProtocol.NotAllowed n => Reply.Fail($"vcpu {m.Cpu}: {n.Reason}"),
                        _ => Reply.Fail($"vcpu {m.Cpu} gave no answer"),
                    })
                .PipeTo(Sender);
        });
    }

    private static Reply CapsReply(GetCap m, VcpuProtocol.CapValues values)
    {
        var caps = new JsonObject();
        foreach (var cap in VcpuCapabilities.All)
        {
            if (m.Name is not null && cap.Name != m.Name) continue;
            var o = new JsonObject
            {
                ["value"] = values.Values.GetValueOrDefault(cap.Name) switch { true => "on", false => "off", null => "unsupported" },
            };
            if (cap.Support != VcpuCapabilities.Support.Settable)
                o["note"] = (cap.Support == VcpuCapabilities.Support.Fixed ? "fixed: " : "") + cap.Meaning;
            caps[cap.Name] = o;
        }
        return Reply.Success(new JsonObject { ["cpu"] = m.Cpu, ["caps"] = caps });
    }
}
