using Actorvisor.Kernel.Cpu;

namespace Actorvisor.Host.Vm;

/// <summary>What one VM is made of.</summary>
/// <param name="Name">The VM's name: its actor is /user/vm-&lt;name&gt;.</param>
/// <param name="MemorySize">Guest RAM in bytes.</param>
/// <param name="KernelPath">A Linux bzImage or vmlinux, Multiboot kernel, flat binary, ELF32 or ELF64 file (see Kernel/Boot/KernelLoader).</param>
/// <param name="Console">Where COM1's output goes.</param>
/// <param name="DeviceReadTimeout">How long a vCPU waits for a device's answer before the VM fails.</param>
public sealed record VmConfig(string Name, ulong MemorySize, string KernelPath, Stream Console, TimeSpan? DeviceReadTimeout = null)
{
    /// <summary>The kernel's command line (Multiboot and Linux kernels); null when none was given.</summary>
    public string? Cmdline { get; init; }
    /// <summary>Multiboot modules: a file and an optional string (<c>--module FILE[,STRING]</c>).</summary>
    public IReadOnlyList<(string Path, string? Text)> Modules { get; init; } = [];
    /// <summary>A Linux kernel's initial ramdisk (<c>--initrd</c>); null when none was given.</summary>
    public string? InitrdPath { get; init; }
    /// <summary>Optional devices (<c>--device</c>); fw_cfg and COM1 are always there.</summary>
    public IReadOnlyList<DeviceSpec> Devices { get; init; } = [];
    /// <summary>PCI functions besides the host and LPC bridges (<c>-s</c>, <c>--disk</c>, <c>--rng</c>, <c>--net</c>), placed and checked (<see cref="PciDeviceSpec.Resolve"/>).</summary>
    public IReadOnlyList<PciDeviceSpec> PciDevices { get; init; } = [];
    /// <summary>When the guest reboots, end the run with status 0 instead of resetting the VM in place (bhyve's and QEMU's --no-reboot).</summary>
    public bool NoReboot { get; init; }
    /// <summary>Where COM1's input comes from (null: none). Read by <see cref="VmRunner"/>, byte for byte, until it ends.</summary>
    public ConsoleInput? Input { get; init; }
    /// <summary>vCPUs and their sockets/cores/threads (<c>-c</c>, bhyve's syntax: <see cref="CpuTopology.Parse"/>).</summary>
    public CpuTopology Topology { get; init; } = CpuTopology.Single;

    /// <summary>The deterministic schedule (<c>--deterministic</c>, <c>--record</c>, <c>--replay</c>); null: real time.</summary>
    public DeterministicRun? Deterministic { get; init; }

    /// <summary>Fault rules (<c>--faults FILE</c>) and the seed that decides them (<c>--fault-seed</c>, else the file's, else random); null: none.</summary>
    public Actorvisor.Host.Faults.FaultScenario? Faults { get; init; }
    public ulong? FaultSeed { get; init; }
    /// <summary>What to do when a device actor throws, per device (config file key <c>supervision</c>).</summary>
    public DeviceSupervision Supervision { get; init; } = DeviceSupervision.Default;
    /// <summary>Where an escalated device failure writes its state dump (null: the temp directory).</summary>
    public string? DumpDirectory { get; init; }

    public const ulong DefaultMemorySize = 256UL << 20;
    public const string DefaultName = "guest";
}

/// <summary>How a deterministic run is set up.</summary>
/// <param name="Epoch">The wall-clock time the guest's RTC shows at power-on (the same every run).</param>
/// <param name="RecordPath">Where console input is logged with its instruction count; null: not logged.</param>
/// <param name="ReplayPath">An input log to replay instead of live input; null: live input.</param>
public sealed record DeterministicRun(DateTimeOffset Epoch, string? RecordPath = null, string? ReplayPath = null)
{
    /// <summary>A fixed power-on time, so that two runs print the same dates.</summary>
    public static readonly DateTimeOffset DefaultEpoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    /// <summary>Virtual time per instruction: 1 ns (a 1 GHz machine that retires one instruction per cycle).</summary>
    public long InstructionsPerSecond { get; init; } = 1_000_000_000;
    public long SliceInstructions { get; init; } = Actorvisor.Actors.Cpu.Deterministic.DeterministicScheduler.DefaultSliceInstructions;
}
