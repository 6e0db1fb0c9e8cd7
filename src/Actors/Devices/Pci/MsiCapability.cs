using static Actorvisor.Actors.Devices.Pci.PciRegisters;

namespace Actorvisor.Actors.Devices.Pci;

/// <summary>
/// An MSI capability (PCI Local Bus 3.0, 6.8.1) with a 64-bit message address and, optionally, per-vector
/// masking: one vector (Multiple Message Capable = 0). A masked vector's message waits in the pending bit and
/// is sent when the vector is unmasked. The address and data are opaque here: the APIC bus reads them.
/// </summary>
public sealed class MsiCapability
{
    public const ushort ControlEnable = 1, Control64Bit = 1 << 7, ControlPerVectorMask = 1 << 8;
    private readonly PciConfigSpace _config;
    private readonly Action<ulong, uint> _send;
    public int Offset { get; }
    public bool PerVectorMasking { get; }

    public MsiCapability(PciConfigSpace config, Action<ulong, uint> send, bool perVectorMasking)
    {
        _config = config;
        _send = send;
        PerVectorMasking = perVectorMasking;
        // Body after ID/next: control (2), address low (4), address high (4), data (2), reserved (2)[, mask (4), pending (4)].
        var body = new byte[perVectorMasking ? 22 : 12];
        var control = (ushort)(Control64Bit | (perVectorMasking ? ControlPerVectorMask : 0));
        body[0] = (byte)control;
        body[1] = (byte)(control >> 8);
        Offset = config.AddCapability(CapabilityMsi, body);
        config.SetWritable16(Offset + 2, ControlEnable | 0x70); // enable, Multiple Message Enable
        config.SetWritable32(Offset + 4, 0xFFFF_FFFC);           // dword-aligned address
        config.SetWritable32(Offset + 8, 0xFFFF_FFFF);
        config.SetWritable16(Offset + 12, 0xFFFF);
        if (perVectorMasking) config.SetWritable32(Offset + 16, 1);
    }

    public bool Enabled => (_config.Get16(Offset + 2) & ControlEnable) != 0;
    public ulong Address => _config.Get32(Offset + 4) | (ulong)_config.Get32(Offset + 8) << 32;
    public ushort Data => _config.Get16(Offset + 12);
    public bool Masked => PerVectorMasking && (_config.Get32(Offset + 16) & 1) != 0;
    public bool Pending => PerVectorMasking && (_config.Get32(Offset + 20) & 1) != 0;

    /// <summary>Signals the vector: sent now, or left pending while masked. False when MSI is off (the caller uses INTx).</summary>
    public bool Trigger()
    {
        if (!Enabled) return false;
        if (Masked) _config.Set32(Offset + 20, 1);
        else _send(Address, Data);
        return true;
    }

    /// <summary>After a configuration write: an unmasked vector sends what was pending.</summary>
    public void ConfigWritten()
    {
        if (Enabled && Pending && !Masked)
        {
            _config.Set32(Offset + 20, 0);
            _send(Address, Data);
        }
    }
}
