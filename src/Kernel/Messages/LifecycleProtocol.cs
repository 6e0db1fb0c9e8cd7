namespace Actorvisor.Kernel.Messages;

/// <summary>VM and vCPU lifecycle commands and their replies (Firecracker's VcpuEvent/VcpuResponse).</summary>
public static class LifecycleProtocol
{
    public enum ResetKind : byte { PowerOn, Warm }

    public sealed record Suspend(string Reason);
    public sealed record Resume
    {
        public static readonly Resume Instance = new();
    }
    public sealed record Reset(ResetKind Kind);
    /// <summary>A device saw the guest ask for a machine reset (i8042 pulse, port 0xCF9); sent to the VM supervisor.</summary>
    public sealed record ResetRequested(string Source);
    /// <summary>A device saw the guest ask to power the machine off (ACPI S5 through PM1 control); sent to the VM supervisor.</summary>
    public sealed record PowerOffRequested(string Source);
    public sealed record PowerOff
    {
        public static readonly PowerOff Instance = new();
    }
    public sealed record SaveState
    {
        public static readonly SaveState Instance = new();
    }
    public sealed record LoadState(byte[] Payload);

    public sealed record Suspended(int VcpuId);
    public sealed record Resumed(int VcpuId);
    public sealed record SavedState(string Name, byte[] Payload);
    public sealed record NotAllowed(string Reason);
}
