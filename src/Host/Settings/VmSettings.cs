using Actorvisor.Host.Vm;
using Actorvisor.Kernel.Cpu;

namespace Actorvisor.Host.Settings;

/// <summary>
/// One VM's settings as `actorvisor run` takes them, from the command line or a config file; null means
/// "not given". <see cref="OverriddenBy"/> lays the command line's over a file's.
/// </summary>
public sealed record VmSettings
{
    public string? Name { get; init; }
    public string? Kernel { get; init; }
    public string? Initrd { get; init; }
    public ulong? Memory { get; init; }
    public CpuTopology? Cpus { get; init; }
    public string? Cmdline { get; init; }
    public IReadOnlyList<string>? Modules { get; init; }
    public IReadOnlyList<DeviceSpec>? Devices { get; init; }
    /// <summary>"stdio" or "file:PATH".</summary>
    public string? Serial { get; init; }
    public bool? NoReboot { get; init; }
    /// <summary>Device supervision policies (config file only: <c>supervision: {uart-0: restart, "*": escalate}</c>).</summary>
    public DeviceSupervision? Supervision { get; init; }

    /// <summary>These settings with every value <paramref name="flags"/> gives put in place of this one's.</summary>
    public VmSettings OverriddenBy(VmSettings flags) => new()
    {
        Name = flags.Name ?? Name,
        Kernel = flags.Kernel ?? Kernel,
        Initrd = flags.Initrd ?? Initrd,
        Memory = flags.Memory ?? Memory,
        Cpus = flags.Cpus ?? Cpus,
        Cmdline = flags.Cmdline ?? Cmdline,
        Modules = flags.Modules ?? Modules,
        Devices = flags.Devices ?? Devices,
        Serial = flags.Serial ?? Serial,
        NoReboot = flags.NoReboot ?? NoReboot,
        Supervision = flags.Supervision ?? Supervision,
    };

    public string SerialOrDefault => Serial ?? "stdio";
}
