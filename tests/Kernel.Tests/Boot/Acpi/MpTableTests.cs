using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Memory;
using static Actorvisor.Kernel.Tests.Boot.Acpi.FirmwareTableReader;

namespace Actorvisor.Kernel.Tests.Boot.Acpi;

/// <summary>The Intel MP 1.4 tables, found and decoded as Linux's mpparse does (MP spec chapter 4).</summary>
public sealed class MpTableTests : IDisposable
{
    private readonly GuestMemory _mem = new(16 << 20);

    public void Dispose() => _mem.Dispose();

    [Fact]
    public void ScanFindsTheFloatingPointerAndItsConfigTableChecksums()
    {
        var a = FirmwareTables.Write(_mem, PlatformDescription.Standard(2)).Mp;
        var fp = ScanForMpFloatingPointer(_mem);
        Assert.Equal(a.FloatingPointer, fp);
        Assert.Equal(4, _mem.ReadByte(a.FloatingPointer + 9));             // spec revision 1.4
        Assert.Equal(0, _mem.ReadByte(a.FloatingPointer + 11));            // feature 1: a config table, not a default configuration
        var ct = _mem.ReadUInt32(a.FloatingPointer + 4);
        Assert.Equal(a.ConfigTable, (ulong)ct);
        Assert.Equal("PCMP", Signature(_mem, ct));
        var length = _mem.ReadUInt16((ulong)ct + 4);
        Assert.Equal(0, Sum(_mem, ct, length));
        Assert.Equal(0xFEE00000u, _mem.ReadUInt32((ulong)ct + 36));
    }

    [Fact]
    public void EntriesAreProcessorsBusIoApicIsaInterruptsAndLocalInterruptsInOrder()
    {
        var a = FirmwareTables.Write(_mem, PlatformDescription.Standard(3)).Mp;
        ulong ct = a.ConfigTable;
        int count = _mem.ReadUInt16(ct + 34);
        Assert.Equal(a.EntryCount, count);
        Assert.Equal(3 + 1 + 1 + 15 + 2, count);
        var p = ct + 44;
        var types = new List<byte>();
        var cpus = new List<(byte Id, byte Flags)>();
        var ioInts = new Dictionary<byte, (byte Pin, ushort Flags)>();
        var localInts = new List<(byte Type, byte Lint)>();
        for (var i = 0; i < count; i++)
        {
            var type = _mem.ReadByte(p);
            types.Add(type);
            switch (type)
            {
                case 0:
                    cpus.Add((_mem.ReadByte(p + 1), _mem.ReadByte(p + 3)));
                    Assert.Equal(0x000306A9u, _mem.ReadUInt32(p + 4)); // CPU signature: family 6
                    p += 20;
                    continue;
                case 1: Assert.Equal("ISA   ", Signature(_mem, p + 2, 6)); break;
                case 2:
                    Assert.Equal(0, _mem.ReadByte(p + 1));                 // IOAPIC ID 0, as the MADT says
                    Assert.Equal(1, _mem.ReadByte(p + 3));                 // enabled
                    Assert.Equal(0xFEC00000u, _mem.ReadUInt32(p + 4));
                    break;
                case 3:
                    Assert.Equal(0, _mem.ReadByte(p + 1));                 // INT
                    Assert.Equal(0, _mem.ReadByte(p + 4));                 // source bus: ISA
                    Assert.Equal(0, _mem.ReadByte(p + 6));                 // destination IOAPIC
                    ioInts.Add(_mem.ReadByte(p + 5), (_mem.ReadByte(p + 7), _mem.ReadUInt16(p + 2)));
                    break;
                case 4:
                    Assert.Equal(0xFF, _mem.ReadByte(p + 6));              // every local APIC
                    localInts.Add((_mem.ReadByte(p + 1), _mem.ReadByte(p + 7)));
                    break;
                default: Assert.Fail($"entry type {type}"); break;
            }
            p += 8;
        }
        Assert.Equal(ct + _mem.ReadUInt16(ct + 4), p);                     // the entries fill the base table exactly
        Assert.Equal(types.Order(), types);                                // sorted by type, as the spec requires
        Assert.Equal([(0, 3), (1, 1), (2, 1)], cpus);                     // enabled; BP on the first only
        Assert.Equal(2, ioInts[0].Pin);                                    // IRQ 0 → pin 2
        Assert.False(ioInts.ContainsKey(2));                               // no cascade entry
        Assert.All(ioInts.Where(kv => kv.Key is not 0), kv => Assert.Equal(kv.Key, kv.Value.Pin));
        Assert.Equal(0xD, ioInts[9].Flags);                                // SCI: level, active high
        Assert.Equal(0, ioInts[4].Flags);                                  // others conform to ISA
        Assert.Equal([(3, 0), (1, 1)], localInts);                        // ExtINT on LINT0, NMI on LINT1
    }
}
