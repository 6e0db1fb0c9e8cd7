using static Actorvisor.Actors.Devices.Pic.PicRegisters;

namespace Actorvisor.Actors.Devices.Pic;

/// <summary>
/// The PC's 8259A pair plus ELCR: master at 20h/21h, slave at A0h/A1h cascaded on the master's IR2, edge or
/// level per pin from 4D0h/4D1h. Inputs: <see cref="SetIrq"/> (ISA IRQ 0-15) and the INTA cycle
/// (<see cref="Acknowledge"/>). Output: the master's INT pin through <paramref name="output"/>, called only
/// when the level changes. The slave's INT drives the master's IR2 as a level (it stays requested while the
/// slave has something to deliver), so a slave request is never lost between two INTA cycles.
/// </summary>
public sealed class Pic(IIrqLine output)
{
    private readonly PicChip _master = new(isMaster: true);
    private readonly PicChip _slave = new(isMaster: false);
    private bool _intr;

    /// <summary>The master's INT output.</summary>
    public bool Intr => _intr;
    public long Spurious { get; private set; }

    /// <summary>Drives ISA IRQ <paramref name="irq"/> (0-15; 2 is the cascade and not a device input).</summary>
    public void SetIrq(int irq, bool level)
    {
        if ((uint)irq >= 16 || irq == CascadeIrq) return;
        if (irq < 8) _master.SetLine(irq, level);
        else _slave.SetLine(irq - 8, level);
        Update();
    }

    public void PulseIrq(int irq)
    {
        SetIrq(irq, true);
        SetIrq(irq, false);
    }

    /// <summary>
    /// The INTA sequence: returns the vector of the highest-priority request and moves it in service. When
    /// the request went away before the INTA (a line dropped), the 8259A answers with level 7 of the chip
    /// that was asked: IRQ7 from the master, IRQ15 from the slave (the master's IR2 is then in service).
    /// </summary>
    public byte Acknowledge()
    {
        var irq = _master.Acknowledge();
        byte vector;
        if (irq < 0)
        {
            Spurious++;
            vector = (byte)(_master.VectorBase | 7);
        }
        else if (irq == CascadeIrq)
        {
            var s = _slave.Acknowledge();
            if (s < 0) Spurious++;
            vector = (byte)(_slave.VectorBase | (s < 0 ? 7 : s));
        }
        else
        {
            vector = (byte)(_master.VectorBase | irq);
        }
        Update();
        return vector;
    }

    public uint Read(ushort port)
    {
        uint v = port switch
        {
            MasterPort => _master.ReadCommand(() => Poll(_master)),
            MasterPort + 1 => _master.ReadData(),
            SlavePort => _slave.ReadCommand(() => Poll(_slave)),
            SlavePort + 1 => _slave.ReadData(),
            ElcrPort => _master.Elcr,
            ElcrPort + 1 => _slave.Elcr,
            _ => 0xFF,
        };
        return v;
    }

    public void Write(ushort port, byte value)
    {
        switch (port)
        {
            case MasterPort: _master.WriteCommand(value); break;
            case MasterPort + 1: _master.WriteData(value); break;
            case SlavePort: _slave.WriteCommand(value); break;
            case SlavePort + 1: _slave.WriteData(value); break;
            case ElcrPort: _master.Elcr = (byte)(value & ElcrMasterWritable); Reapply(_master); break;
            case ElcrPort + 1: _slave.Elcr = (byte)(value & ElcrSlaveWritable); Reapply(_slave); break;
            default: return;
        }
        Update();
    }

    /// <summary>A poll read is an INTA without the vector cycle.</summary>
    private int Poll(PicChip chip)
    {
        var irq = chip.Acknowledge();
        Update();
        return irq;
    }

    private static void Reapply(PicChip chip)
    {
        // A pin switched to level follows its line from now on.
        for (var pin = 0; pin < 8; pin++)
            if ((chip.Elcr & (1 << pin)) != 0)
                chip.SetLine(pin, (chip.Lines & (1 << pin)) != 0);
    }

    private void Update()
    {
        // The cascade input is wired as a level: IRR2 mirrors the slave's INT.
        if (_slave.Intr) _master.Irr |= 1 << CascadeIrq; else _master.Irr &= unchecked((byte)~(1 << CascadeIrq));
        var intr = _master.Intr;
        if (intr == _intr) return;
        _intr = intr;
        output.Set(intr);
    }

    // ---- inspection for tests and state dumps ----
    public byte MasterIrr => _master.Irr;
    public byte MasterIsr => _master.Isr;
    public byte SlaveIrr => _slave.Irr;
    public byte SlaveIsr => _slave.Isr;
    public byte MasterVectorBase => _master.VectorBase;
    public byte SlaveVectorBase => _slave.VectorBase;
}
