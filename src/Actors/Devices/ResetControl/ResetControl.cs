namespace Actorvisor.Actors.Devices.ResetControl;

/// <summary>
/// The reset control register at port 0xCF9 (Intel PIIX3/ICH "RST_CNT"): writing RST_CPU (bit 2) as 1
/// resets the machine; SYS_RST (bit 1, hard rather than soft) and FULL_RST (bit 3) are stored and read
/// back. Linux's reboot=pci and many firmwares write 0x06 or 0x0E.
/// </summary>
public sealed class ResetControl
{
    public const ushort Port = 0xCF9;
    public const byte SystemReset = 0x02;
    public const byte ResetCpu = 0x04;
    public const byte FullReset = 0x08;

    private byte _value;

    public byte Read() => _value;

    /// <summary>Returns true if the write resets the machine.</summary>
    public bool Write(byte value)
    {
        _value = (byte)(value & (SystemReset | FullReset));
        return (value & ResetCpu) != 0;
    }
}
