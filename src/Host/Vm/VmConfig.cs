namespace Actorvisor.Host.Vm;

/// <summary>What one VM is made of.</summary>
/// <param name="Name">The VM's name: its actor is /user/vm-&lt;name&gt;.</param>
/// <param name="MemorySize">Guest RAM in bytes.</param>
/// <param name="KernelPath">A flat binary, ELF32 or ELF64 file (see Kernel/Boot/KernelLoader).</param>
/// <param name="Console">Where COM1's output goes.</param>
/// <param name="DeviceReadTimeout">How long a vCPU waits for a device's answer before the VM fails.</param>
public sealed record VmConfig(string Name, ulong MemorySize, string KernelPath, Stream Console, TimeSpan? DeviceReadTimeout = null)
{
    public const ulong DefaultMemorySize = 256UL << 20;
    public const string DefaultName = "guest";
}
