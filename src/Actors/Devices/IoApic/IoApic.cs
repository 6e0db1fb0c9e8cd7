using Actorvisor.Kernel.Messages;
using static Actorvisor.Actors.Devices.IoApic.IoApicRegisters;
using static Actorvisor.Kernel.Messages.InterruptProtocol;

namespace Actorvisor.Actors.Devices.IoApic;

/// <summary>Where the IOAPIC's interrupt messages go (the APIC bus to the LAPICs).</summary>
public interface IApicMessageSink
{
    void Send(LapicDeliver message);
}

/// <summary>
/// The I/O APIC model: IOREGSEL/IOWIN indirect access to ID, version, arbitration and 32 redirection
/// entries, and the EOI register. An edge pin sends one message per rising edge while unmasked (an edge
/// while masked is lost, as on the chip). A level pin sends while asserted, unmasked and Remote IRR clear,
/// and sets Remote IRR; an EOI for its vector (broadcast by a LAPIC, or written to the EOI register)
/// clears Remote IRR and sends again if the line is still asserted. Like bhyve, <see cref="SetPin"/>
/// takes the asserted state, so the polarity bit is kept but does not invert the input.
/// </summary>
public sealed class IoApic(IApicMessageSink sink)
{
    private readonly ulong[] _entries = Enumerable.Repeat(PowerOnEntry, PinCount).ToArray();
    private readonly bool[] _asserted = new bool[PinCount];
    private uint _select;
    private uint _id;

    public long Delivered { get; private set; }

    public ulong Entry(int pin) => _entries[pin];
    public bool Asserted(int pin) => _asserted[pin];

    public void SetPin(int pin, bool asserted)
    {
        if ((uint)pin >= PinCount) return;
        var was = _asserted[pin];
        _asserted[pin] = asserted;
        var e = _entries[pin];
        if ((e & LevelTriggered) != 0)
        {
            if (asserted) TryDeliver(pin);
        }
        else if (asserted && !was)
        {
            TryDeliver(pin);
        }
    }

    public void PulsePin(int pin)
    {
        SetPin(pin, true);
        SetPin(pin, false);
    }

    /// <summary>A LAPIC's EOI for a level-triggered vector: clears Remote IRR of every level pin with that vector.</summary>
    public void EndOfInterrupt(byte vector)
    {
        for (var pin = 0; pin < PinCount; pin++)
        {
            var e = _entries[pin];
            if ((e & VectorMask) != vector || (e & LevelTriggered) == 0 || (e & RemoteIrr) == 0) continue;
            _entries[pin] = e & ~(ulong)RemoteIrr;
            if (_asserted[pin]) TryDeliver(pin);
        }
    }

    private void TryDeliver(int pin)
    {
        var e = _entries[pin];
        if ((e & Masked) != 0) return;
        var level = (e & LevelTriggered) != 0;
        if (level)
        {
            if ((e & RemoteIrr) != 0) return;
            _entries[pin] = e | RemoteIrr;
        }
        Delivered++;
        var mode = (DeliveryMode)((e & DeliveryModeMask) >> DeliveryModeShift);
        sink.Send(new LapicDeliver((byte)(e & VectorMask), mode, level ? TriggerMode.Level : TriggerMode.Edge,
            new ApicDestination((byte)(e >> 56), (e & DestinationLogical) != 0)));
    }

    public uint Read(ulong offset, int size)
    {
        if (size != 4) return 0; // the registers are 32 bits wide; other widths read nothing (82093AA 3.0)
        return offset switch
        {
            RegisterSelect => _select,
            Window => ReadIndexed(_select),
            _ => 0,
        };
    }

    public void Write(ulong offset, int size, uint value)
    {
        if (size != 4) return;
        switch (offset)
        {
            case RegisterSelect: _select = value & 0xFF; break;
            case Window: WriteIndexed(_select, value); break;
            case Eoi: EndOfInterrupt((byte)value); break;
        }
    }

    private uint ReadIndexed(uint index)
    {
        if (index == IdIndex) return _id;
        if (index == VersionIndex) return IoApicRegisters.Version;
        if (index == ArbitrationIndex) return _id;
        if (index >= RedirectionBase && index < RedirectionBase + 2 * PinCount)
        {
            var e = _entries[(index - RedirectionBase) / 2];
            return (index & 1) == 0 ? (uint)e : (uint)(e >> 32);
        }
        return 0;
    }

    private void WriteIndexed(uint index, uint value)
    {
        if (index == IdIndex)
        {
            _id = value & IdMask;
            return;
        }
        if (index < RedirectionBase || index >= RedirectionBase + 2 * PinCount) return; // version, arbitration: read-only
        var pin = (int)(index - RedirectionBase) / 2;
        var e = _entries[pin];
        if ((index & 1) == 0)
            e = (e & ~(ulong)LowWritable) | (value & LowWritable);
        else
            e = (e & 0xFFFF_FFFFUL) | ((ulong)(value & HighWritable) << 32);
        // An edge-triggered pin has no Remote IRR (82093AA: "undefined for edge-triggered"); keep it clear.
        if ((e & LevelTriggered) == 0) e &= ~(ulong)RemoteIrr;
        _entries[pin] = e;
        // Unmasking (or switching to level) an asserted level pin delivers it now.
        if ((e & LevelTriggered) != 0 && _asserted[pin]) TryDeliver(pin);
    }

    public IoApicState Save() => new(_id, _select, (ulong[])_entries.Clone(), (bool[])_asserted.Clone());

    public static IoApic Restore(IoApicState s, IApicMessageSink sink)
    {
        var io = new IoApic(sink) { _id = s.Id, _select = s.Select };
        Array.Copy(s.Entries, io._entries, PinCount);
        Array.Copy(s.Asserted, io._asserted, PinCount);
        return io;
    }
}

/// <summary>Register values of an <see cref="IoApic"/> (no handles).</summary>
public sealed record IoApicState(uint Id, uint Select, ulong[] Entries, bool[] Asserted);
