using static Actorvisor.Actors.Devices.Pic.PicRegisters;

namespace Actorvisor.Actors.Devices.Pic;

/// <summary>
/// One 8259A: IRR/ISR/IMR, the initialization sequence, EOIs, rotation, special mask and poll mode.
/// <see cref="Pic"/> wires two of them in cascade. Priorities are relative to <see cref="_highest"/>, the
/// level with the highest priority (IR0 after initialization; rotation moves it).
/// </summary>
internal sealed class PicChip(bool isMaster)
{
    public byte Irr, Isr, Imr;
    /// <summary>The levels the IR inputs are driven at (for edge detection).</summary>
    public byte Lines;
    /// <summary>Per-pin level sensitivity from the ELCR.</summary>
    public byte Elcr;
    public byte VectorBase;
    public bool AutoEoi, RotateOnAutoEoi, SpecialMask, SpecialFullyNested, ReadIsr, PollPending, LevelMode;
    /// <summary>0: ready; 2, 3, 4: the next data-port write is that ICW.</summary>
    public int InitStep;
    private bool _needIcw4, _single;
    private int _highest;

    public bool IsMaster => isMaster;

    /// <summary>Pins that are level-sensitive (ELCR or ICW1.LTIM).</summary>
    private byte LevelPins => LevelMode ? (byte)0xFF : Elcr;

    public void SetLine(int pin, bool level)
    {
        var bit = (byte)(1 << pin);
        var was = (Lines & bit) != 0;
        if (level) Lines |= bit; else Lines &= (byte)~bit;
        if ((LevelPins & bit) != 0)
        {
            // Level-sensitive: the request follows the line.
            if (level) Irr |= bit; else Irr &= (byte)~bit;
        }
        else if (level && !was)
        {
            Irr |= bit; // a rising edge latches; a falling one does not clear the latch
        }
    }

    /// <summary>Priority rank of a level: 0 is the highest.</summary>
    private int Rank(int irq) => (irq - _highest) & 7;

    /// <summary>The highest-priority level set in <paramref name="mask"/>, or -1.</summary>
    private int Highest(byte mask)
    {
        if (mask == 0) return -1;
        for (var i = 0; i < 8; i++)
        {
            var irq = (_highest + i) & 7;
            if ((mask & (1 << irq)) != 0) return irq;
        }
        return -1;
    }

    /// <summary>The request that would interrupt now (unmasked and above everything in service), or -1.</summary>
    public int PendingIrq()
    {
        var irq = Highest((byte)(Irr & ~Imr));
        if (irq < 0) return -1;
        var inService = Isr;
        // Special mask mode: a masked level in service does not hold back lower ones.
        if (SpecialMask) inService &= (byte)~Imr;
        // Special fully nested mode: the slave may interrupt again while the cascade level is in service.
        if (isMaster && SpecialFullyNested) inService &= unchecked((byte)~(1 << CascadeIrq));
        var current = Highest(inService);
        if (current >= 0 && Rank(current) <= Rank(irq)) return -1;
        return irq;
    }

    public bool Intr => PendingIrq() >= 0;

    /// <summary>
    /// The INTA cycle: the pending level moves from IRR to ISR (unless auto-EOI) and its number is returned;
    /// -1 when nothing is pending any more (the caller answers with the spurious level 7).
    /// </summary>
    public int Acknowledge()
    {
        var irq = PendingIrq();
        if (irq < 0) return -1;
        var bit = (byte)(1 << irq);
        // An edge request is consumed; a level request stays while its line is high.
        if ((LevelPins & bit) == 0 || (Lines & bit) == 0) Irr &= (byte)~bit;
        if (AutoEoi)
        {
            if (RotateOnAutoEoi) _highest = (irq + 1) & 7;
        }
        else
        {
            Isr |= bit;
        }
        return irq;
    }

    public void WriteCommand(byte value)
    {
        if ((value & Icw1Select) != 0)
        {
            // ICW1: start initialization. The datasheet: IMR cleared, IR7 lowest priority, special mask off,
            // status read set to IRR, and the edge latches reset (a line already high must rise again).
            _needIcw4 = (value & Icw1Ic4) != 0;
            _single = (value & Icw1Sngl) != 0;
            LevelMode = (value & Icw1Ltim) != 0;
            Imr = Isr = 0;
            Irr = (byte)(LevelPins & Lines);
            _highest = 0;
            SpecialMask = ReadIsr = PollPending = false;
            AutoEoi = RotateOnAutoEoi = SpecialFullyNested = false;
            InitStep = 2;
            return;
        }
        if ((value & Ocw3Select) != 0)
        {
            if ((value & Ocw3Esmm) != 0) SpecialMask = (value & Ocw3Smm) != 0;
            if ((value & Ocw3Rr) != 0) ReadIsr = (value & Ocw3Ris) != 0;
            if ((value & Ocw3Poll) != 0) PollPending = true;
            return;
        }
        WriteOcw2(value);
    }

    private void WriteOcw2(byte value)
    {
        var level = value & 7;
        switch (value & 0xE0)
        {
            case Ocw2NonSpecificEoi:
            case Ocw2RotateNonSpecificEoi:
            {
                var irq = Highest(SpecialMask ? (byte)(Isr & ~Imr) : Isr);
                if (irq < 0) return;
                Isr &= (byte)~(1 << irq);
                if ((value & 0xE0) == Ocw2RotateNonSpecificEoi) _highest = (irq + 1) & 7;
                return;
            }
            case Ocw2SpecificEoi:
                Isr &= (byte)~(1 << level);
                return;
            case Ocw2RotateSpecificEoi:
                Isr &= (byte)~(1 << level);
                _highest = (level + 1) & 7;
                return;
            case Ocw2SetPriority:
                _highest = (level + 1) & 7; // the level given becomes the lowest
                return;
            case Ocw2SetRotateAeoi:
                RotateOnAutoEoi = true;
                return;
            case Ocw2ClearRotateAeoi:
                RotateOnAutoEoi = false;
                return;
            // 010: no operation.
        }
    }

    public void WriteData(byte value)
    {
        switch (InitStep)
        {
            case 2:
                VectorBase = (byte)(value & 0xF8);
                InitStep = _single ? (_needIcw4 ? 4 : 0) : 3;
                return;
            case 3:
                // ICW3: the cascade wiring is fixed on a PC (slave on IR2, slave ID 2); the value changes nothing.
                InitStep = _needIcw4 ? 4 : 0;
                return;
            case 4:
                AutoEoi = (value & Icw4Aeoi) != 0;
                SpecialFullyNested = (value & Icw4Sfnm) != 0;
                InitStep = 0;
                return;
            default:
                Imr = value; // OCW1
                return;
        }
    }

    /// <summary>A0 = 0 read: the poll word after a poll command, else IRR or ISR as OCW3 selected.</summary>
    public byte ReadCommand(Func<int> poll)
    {
        if (PollPending)
        {
            PollPending = false;
            var irq = poll();
            return irq < 0 ? (byte)0 : (byte)(PollInterrupt | irq);
        }
        return ReadIsr ? Isr : Irr;
    }

    public byte ReadData() => Imr;

    public int HighestPriority => _highest;

    public void Restore(int highest, bool needIcw4, bool single)
    {
        _highest = highest;
        _needIcw4 = needIcw4;
        _single = single;
    }

    public (bool NeedIcw4, bool Single) InitFlags => (_needIcw4, _single);
}
