using System.Diagnostics;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Memory;
using Xunit.Abstractions;
using static Actorvisor.Kernel.Tests.Boot.Acpi.FirmwareTableReader;

namespace Actorvisor.Kernel.Tests.Boot.Acpi;

/// <summary>
/// The firmware's description of PCI: MCFG, the DSDT's PCI0 with its _CRS windows, _PRT (APIC and PIC modes),
/// the LNKA-LNKH links and the ECAM reservation, checked with ACPICA (iasl -d, acpiexec) where installed; and the
/// MP table's PCI bus and INTx entries.
/// </summary>
public sealed class PciTablesTests(ITestOutputHelper output) : IDisposable
{
    private readonly GuestMemory _mem = new(16 << 20);
    private readonly string _dir = Directory.CreateTempSubdirectory("actorvisor-pci-acpi-").FullName;

    public void Dispose()
    {
        _mem.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>Slot 3 INTA on GSI 16 (PIRQA → IRQ 5), slot 4 INTA and INTB on GSIs 17 and 18 (PIRQB, PIRQC → 10, 11).</summary>
    private static readonly PciDescription Pci = new(0xE000_0000, 0, 0, 0xC000_0000, 0x2000_0000, 0x10_0000_0000, 0x10_0000_0000,
        0x2000, 0xFFFF,
        [new PciIntxDescription(3, 0, 16, 0), new PciIntxDescription(4, 0, 17, 1), new PciIntxDescription(4, 1, 18, 2)],
        [5, 10, 11, -1, -1, -1, -1, -1]);

    private static PlatformDescription Platform => PlatformDescription.Standard(1, hpet: true) with { Pci = Pci };

    private static string? Tool(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private (int Exit, string Output) Run(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { WorkingDirectory = _dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr);
    }

    [Fact]
    public void McfgNamesTheEcamWindowAndTheXsdtListsIt()
    {
        var a = FirmwareTables.Write(_mem, Platform).Acpi;
        Assert.NotEqual(0ul, a.Mcfg);
        Assert.Equal("MCFG", Signature(_mem, a.Mcfg));
        Assert.Equal(60, TableLength(_mem, a.Mcfg));
        Assert.Equal(0, Sum(_mem, a.Mcfg, 60));
        Assert.Equal(0xE000_0000ul, _mem.ReadUInt64(a.Mcfg + 44));
        Assert.Equal(0, _mem.ReadUInt16(a.Mcfg + 52));  // segment
        Assert.Equal(0, _mem.ReadByte(a.Mcfg + 54));    // start bus
        Assert.Equal(0, _mem.ReadByte(a.Mcfg + 55));    // end bus
        var entries = (TableLength(_mem, a.Xsdt) - 36) / 8;
        Assert.Contains(a.Mcfg, Enumerable.Range(0, entries).Select(i => _mem.ReadUInt64(a.Xsdt + 36 + (ulong)i * 8)));
        // No PCI, no MCFG.
        Assert.Equal(0ul, FirmwareTables.Write(_mem, PlatformDescription.Standard(1)).Acpi.Mcfg);
    }

    [Fact]
    public void MpTableHasAPciBusAndAnIoInterruptEntryPerIntx()
    {
        var mp = FirmwareTables.Write(_mem, Platform).Mp;
        var p = mp.ConfigTable + 44;
        var buses = new List<(byte Id, string Type)>();
        var pci = new List<(byte SourceIrq, byte Pin, ushort Flags)>();
        var isaBusId = -1;
        for (var i = 0; i < mp.EntryCount; i++)
        {
            var type = _mem.ReadByte(p);
            if (type == 0) { p += 20; continue; }
            if (type == 1) buses.Add((_mem.ReadByte(p + 1), Signature(_mem, p + 2, 6)));
            if (type == 3 && _mem.ReadByte(p + 4) == 0) pci.Add((_mem.ReadByte(p + 5), _mem.ReadByte(p + 7), _mem.ReadUInt16(p + 2)));
            if (type == 3 && _mem.ReadByte(p + 4) != 0) isaBusId = _mem.ReadByte(p + 4);
            p += 8;
        }
        // Linux maps a PCI interrupt entry by comparing its source bus ID with the PCI bus number: PCI is bus ID 0.
        Assert.Equal([(0, "PCI   "), (1, "ISA   ")], buses);
        Assert.Equal(1, isaBusId);
        // Source IRQ: device << 2 | pin; active low, level (flags 0xF).
        Assert.Equal([(3 << 2 | 0, 16, 0xF), (4 << 2 | 0, 17, 0xF), (4 << 2 | 1, 18, 0xF)], pci.Select(e => ((int)e.SourceIrq, (int)e.Pin, (int)e.Flags)));
    }

    [SkippableFact]
    public void IaslDisassemblesPci0AndTheLinksAndTheDsdtRoundTrips()
    {
        var iasl = Tool("iasl");
        Skip.If(iasl is null, "iasl is not installed (apt-get install acpica-tools)");
        var a = FirmwareTables.Write(_mem, Platform).Acpi;
        var dsdtBytes = _mem.GetSpan(a.Dsdt, TableLength(_mem, a.Dsdt)).ToArray();
        File.WriteAllBytes(Path.Combine(_dir, "dsdt.dat"), dsdtBytes);
        var (exit, log) = Run(iasl!, "-d", "dsdt.dat");
        Assert.True(exit == 0, log);
        var dsl = File.ReadAllText(Path.Combine(_dir, "dsdt.dsl"));
        output.WriteLine(dsl);
        Assert.Contains("Method (_PIC, 1, NotSerialized)", dsl);
        Assert.Contains("Device (PCI0)", dsl);
        Assert.Contains("Name (_HID, EisaId (\"PNP0A03\")", dsl);
        Assert.Contains("WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,", dsl);
        Assert.Matches(@"WordIO \(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,\s+0x0000,\s+//[^\n]*\s+0x2000,\s+//[^\n]*\s+0xFFFF,", dsl);
        Assert.Matches(@"DWordMemory \(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,\s+0x00000000,\s+//[^\n]*\s+0xC0000000,\s+//[^\n]*\s+0xDFFFFFFF,", dsl);
        Assert.Matches(@"QWordMemory \(ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,\s+0x0000000000000000,\s+//[^\n]*\s+0x0000001000000000,\s+//[^\n]*\s+0x0000001FFFFFFFFF,", dsl);
        Assert.Contains("Method (_PRT, 0, NotSerialized)", dsl);
        Assert.Contains("If (PICM)", dsl);
        Assert.Contains("Device (LNKA)", dsl);
        Assert.Contains("Device (LNKH)", dsl);
        Assert.Contains("IRQ (Level, ActiveLow, Shared, )", dsl);
        Assert.Contains("EisaId (\"PNP0C02\")", dsl);
        Assert.Contains("Memory32Fixed (ReadWrite,", dsl);

        var (exit2, log2) = Run(iasl!, "-p", "recompiled", "dsdt.dsl");
        Assert.True(exit2 == 0, $"iasl could not recompile the disassembly:\n{log2}");
        Assert.Equal(dsdtBytes[36..], File.ReadAllBytes(Path.Combine(_dir, "recompiled.aml"))[36..]);
    }

    /// <summary>ACPICA's interpreter runs _PRT in both modes (after _PIC) and the links' _CRS, as an OS would.</summary>
    [SkippableFact]
    public void AcpiexecEvaluatesThePrtInApicAndPicModeAndTheLinkResources()
    {
        var acpiexec = Tool("acpiexec");
        Skip.If(acpiexec is null, "acpiexec is not installed (apt-get install acpica-tools)");
        var a = FirmwareTables.Write(_mem, Platform).Acpi;
        var files = new (string Name, ulong At)[] { ("dsdt", a.Dsdt), ("facp", a.Fadt), ("apic", a.Madt), ("mcfg", a.Mcfg) }
            .Select(t => { var f = Path.Combine(_dir, t.Name + ".dat"); File.WriteAllBytes(f, _mem.GetSpan(t.At, TableLength(_mem, t.At)).ToArray()); return f; });
        var (exit, log) = Run(acpiexec!, ["-b",
            "evaluate \\_SB.PCI0._PRT; evaluate \\_PIC 1; evaluate \\_SB.PCI0._PRT; evaluate \\_SB.LNKB._CRS; evaluate \\_SB.LNKB._STA; evaluate \\_SB.LNKD._STA",
            .. files]);
        output.WriteLine(log);
        Assert.Equal(0, exit);
        Assert.DoesNotMatch("ACPI (Warning|Error|Exception)", log);
        // PIC mode first (PICM = 0): slot 4 INTB → LNKC; then APIC mode: slot 4 INTB → GSI 18.
        Assert.Matches(@"\[Integer\] = 000000000004FFFF\s+\[Integer\] = 0000000000000001\s+\[Object Reference\] = 0x[0-9a-f]+ <Node>\s+Name LNKC Device", log);
        Assert.Matches(@"\[Integer\] = 000000000004FFFF\s+\[Integer\] = 0000000000000001\s+\[Integer\] = 0000000000000000\s+\[Integer\] = 0000000000000012", log);
        Assert.Contains("23 00 04 18 79 00", log); // IRQ 10, level/low/shared, end tag
        Assert.Matches(@"\[Integer\] = 000000000000000B", log); // LNKB present and enabled
    }
}
