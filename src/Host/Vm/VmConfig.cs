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

    public const ulong DefaultMemorySize = 256UL << 20;
    public const string DefaultName = "guest";
}
