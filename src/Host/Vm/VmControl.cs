using System.Text.Json.Nodes;

namespace Actorvisor.Host.Vm;

/// <summary>
/// What a control client (the socket, a test) may ask of a <see cref="VmSupervisor"/>: bhyvectl's verbs.
/// Every command is answered with one <see cref="Reply"/>, also when it is refused (a bad vCPU index, a
/// state that does not allow it, a VM that is ending).
/// </summary>
public static class VmControl
{
    public abstract record Command;

    public sealed record GetStatus : Command { public static readonly GetStatus Instance = new(); }
    /// <summary>Every active vCPU leaves the guest; answered when all have (bhyve's VM_SUSPEND barrier).</summary>
    public sealed record Suspend : Command { public static readonly Suspend Instance = new(); }
    public sealed record Resume : Command { public static readonly Resume Instance = new(); }
    /// <summary>Reset now: the VM is built again from power-on state, RTC time and NVRAM kept (exit code 0 with --no-reboot).</summary>
    public sealed record ForceReset : Command { public static readonly ForceReset Instance = new(); }
    /// <summary>Power off now, whatever the guest is doing (exit code 1).</summary>
    public sealed record ForcePowerOff : Command { public static readonly ForcePowerOff Instance = new(); }
    /// <summary>Press the ACPI power button: a guest that listens shuts itself down.</summary>
    public sealed record PowerButton : Command { public static readonly PowerButton Instance = new(); }
    public sealed record GetActiveCpus : Command { public static readonly GetActiveCpus Instance = new(); }
    public sealed record GetSuspendedCpus : Command { public static readonly GetSuspendedCpus Instance = new(); }
    public sealed record GetTopology : Command { public static readonly GetTopology Instance = new(); }
    public sealed record GetStats : Command { public static readonly GetStats Instance = new(); }
    /// <summary>The VM's telemetry counters now (a LiveSnapshot; what `actorvisor top` polls).</summary>
    public sealed record GetTelemetry : Command { public static readonly GetTelemetry Instance = new(); }
    public sealed record GetRegs(int Cpu) : Command;
    public sealed record SetReg(int Cpu, string Name, ulong Value) : Command;
    public sealed record GetLapic(int Cpu) : Command;
    public sealed record InjectNmi(int Cpu) : Command;
    /// <summary>bhyve's capabilities of a vCPU (all, or the one named); see <see cref="Actorvisor.Actors.Cpu.VcpuCapabilities"/>.</summary>
    public sealed record GetCap(int Cpu, string? Name = null) : Command;
    public sealed record SetCap(int Cpu, string Name, bool On) : Command;

    public enum IrqAction { Assert, Deassert, Pulse }
    public sealed record Irq(IrqAction Action, int Gsi) : Command;
    public sealed record GetRtcTime : Command { public static readonly GetRtcTime Instance = new(); }
    public sealed record SetRtcTime(long UnixSeconds) : Command;
    public sealed record GetNvram(int Offset) : Command;
    public sealed record SetNvram(int Offset, byte Value) : Command;
    /// <summary>Make a device actor fail (Akka's Kill), to exercise its supervision policy.</summary>
    public sealed record CrashDevice(string Device) : Command;

    public enum FaultsAction { List, Report, Clear, Pause, Resume, Remove, Add }
    /// <summary>The fault engine at run time (issue 8): list or report the rules, clear, pause, resume, remove one, add one.</summary>
    public sealed record FaultRules(FaultsAction Action, string? Name = null, IReadOnlyDictionary<string, string>? Rule = null) : Command;
    /// <summary>The telemetry's traced classes and sampling ratio (null: unchanged); answered with the status.</summary>
    public sealed record Trace(string? Classes, double? Sample) : Command;

    /// <summary>The answer: a result object, or an error that says what was wrong. The object is not changed after it is sent.</summary>
    public sealed record Reply(JsonObject? Result, string? Error)
    {
        public bool Ok => Error is null;
        public static Reply Success(JsonObject result) => new(result, null);
        public static Reply Fail(string error) => new(null, error);
    }

    /// <summary>Registers, counters and addresses go out as "0x..." strings: JSON numbers lose 64-bit values in many readers.</summary>
    public static string Hex(ulong value) => $"0x{value:x}";
}
