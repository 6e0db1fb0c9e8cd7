using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Boot.Acpi;
using Actorvisor.Kernel.Memory;
using static Actorvisor.Kernel.Tests.Boot.Acpi.FirmwareTableReader;

namespace Actorvisor.Kernel.Tests.Boot.Acpi;

/// <summary>The ACPI tables as a guest finds them: by scanning for the RSDP and following its pointers (ACPI 6.3, chapter 5).</summary>
public sealed class AcpiTablesTests : IDisposable
{
    private readonly GuestMemory _mem = new(16 << 20);

    public void Dispose() => _mem.Dispose();

    private FirmwareTableAddresses Write(int cpus = 2, bool hpet = true) => FirmwareTables.Write(_mem, PlatformDescription.Standard(cpus, hpet));

    [Fact]
    public void ScanOfTheBiosAreaFindsTheRsdpWithBothChecksums()
    {
        var a = Write();
        Assert.Equal(a.Rsdp, ScanForRsdp(_mem));
        Assert.Equal(0UL, a.Rsdp % 16);
        Assert.InRange(a.Rsdp, 0xE0000UL, 0xFFFFFUL);
        Assert.Equal(2, _mem.ReadByte(a.Rsdp + 15));                // revision 2: ACPI 2.0+
        Assert.Equal(36u, _mem.ReadUInt32(a.Rsdp + 20));            // length
        Assert.Equal(a.Acpi.Rsdt, (ulong)_mem.ReadUInt32(a.Rsdp + 16));
        Assert.Equal(a.Acpi.Xsdt, _mem.ReadUInt64(a.Rsdp + 24));
        Assert.Equal(0, Sum(_mem, a.Rsdp, 20));
        Assert.Equal(0, Sum(_mem, a.Rsdp, 36));
    }

    [Fact]
    public void XsdtAndRsdtNameTheSameTablesAndEveryTableChecksumsToZero()
    {
        var a = Write(hpet: true);
        var x = XsdtEntries(_mem, a.Acpi.Xsdt);
        Assert.Equal(["FACP", "APIC", "HPET"], x.Select(p => Signature(_mem, p)));
        Assert.Equal(x, RsdtEntries(_mem, a.Acpi.Rsdt));
        Assert.Equal("XSDT", Signature(_mem, a.Acpi.Xsdt));
        Assert.Equal("RSDT", Signature(_mem, a.Acpi.Rsdt));
        foreach (var t in x.Append(a.Acpi.Xsdt).Append(a.Acpi.Rsdt).Append(a.Acpi.Dsdt))
            Assert.True(Sum(_mem, t, TableLength(_mem, t)) == 0, $"{Signature(_mem, t)} checksum");
    }

    [Fact]
    public void WithoutHpetThereIsNoHpetTable()
    {
        var a = Write(hpet: false);
        Assert.Equal(["FACP", "APIC"], XsdtEntries(_mem, a.Acpi.Xsdt).Select(p => Signature(_mem, p)));
        Assert.Equal(0UL, a.Acpi.Hpet);
    }

    [Fact]
    public void FadtDescribesThePiix4PmBlockSciResetAndLegacyDevices()
    {
        var f = Write().Acpi.Fadt;
        Assert.Equal(6, _mem.ReadByte(f + 8));                              // revision
        Assert.Equal(276, TableLength(_mem, f));
        var dsdt = _mem.ReadUInt32(f + Fadt.DsdtOffset);
        Assert.Equal("DSDT", Signature(_mem, dsdt));
        Assert.Equal((ulong)dsdt, _mem.ReadUInt64(f + Fadt.XDsdtOffset));
        var facs = _mem.ReadUInt32(f + Fadt.FirmwareCtrlOffset);
        Assert.Equal("FACS", Signature(_mem, facs));
        Assert.Equal(0u, facs % 64);
        Assert.Equal(64u, _mem.ReadUInt32((ulong)facs + 4));
        Assert.Equal(9, _mem.ReadUInt16(f + Fadt.SciIntOffset));
        Assert.Equal(0u, _mem.ReadUInt32(f + Fadt.SmiCmdOffset));           // no SMI_CMD: always in ACPI mode
        Assert.Equal(0x600u, _mem.ReadUInt32(f + Fadt.Pm1aEventOffset));
        Assert.Equal(0x604u, _mem.ReadUInt32(f + Fadt.Pm1aControlOffset));
        Assert.Equal(0x608u, _mem.ReadUInt32(f + Fadt.PmTimerOffset));
        Assert.Equal([4, 2, 0, 4], _mem.GetSpan(f + 88, 4).ToArray());      // PM1_EVT_LEN, PM1_CNT_LEN, PM2_CNT_LEN, PM_TMR_LEN
        Assert.Equal(0x32, _mem.ReadByte(f + Fadt.CenturyOffset));
        Assert.Equal(Fadt.BootArchLegacyDevices | Fadt.BootArch8042 | Fadt.BootArchNoVga, _mem.ReadUInt16(f + Fadt.BootArchOffset));
        var flags = _mem.ReadUInt32(f + Fadt.FlagsOffset);
        Assert.Equal(0u, flags & (Fadt.FlagHardwareReduced | Fadt.FlagTimerValExt)); // full hardware, 24-bit timer
        Assert.NotEqual(0u, flags & Fadt.FlagResetRegSupported);
        // RESET_REG: system I/O, 8 bits at 0xCF9; value 6 (RST_CPU | SYS_RST).
        Assert.Equal([1, 8, 0, 1], _mem.GetSpan(f + Fadt.ResetRegOffset, 4).ToArray());
        Assert.Equal(0xCF9UL, _mem.ReadUInt64(f + Fadt.ResetRegOffset + 4));
        Assert.Equal(6, _mem.ReadByte(f + Fadt.ResetValueOffset));
        // The X_ blocks: system I/O, bit widths of the legacy lengths, same ports.
        AssertGas(f + Fadt.XPm1aEventOffset, 32, 0x600);
        AssertGas(f + Fadt.XPm1aControlOffset, 16, 0x604);
        AssertGas(f + Fadt.XPmTimerOffset, 32, 0x608);
    }

    private void AssertGas(ulong at, byte bits, ulong port)
    {
        Assert.Equal(Gas.SystemIo, _mem.ReadByte(at));
        Assert.Equal(bits, _mem.ReadByte(at + 1));
        Assert.Equal(port, _mem.ReadUInt64(at + 4));
    }

    [Fact]
    public void MadtDecodesToTheProcessorsIoApicOverridesAndLint1Nmi()
    {
        var m = Write(cpus: 3).Acpi.Madt;
        Assert.Equal(0xFEE00000u, _mem.ReadUInt32(m + 36));
        Assert.Equal(Madt.FlagPcatCompat, _mem.ReadUInt32(m + 40));
        var end = m + (ulong)TableLength(_mem, m);
        var lapics = new List<(byte Uid, byte Id, uint Flags)>();
        var overrides = new List<(byte Irq, uint Gsi, ushort Flags)>();
        (byte Id, uint Address, uint GsiBase)? ioapic = null;
        (byte Uid, ushort Flags, byte Lint)? nmi = null;
        for (var p = m + 44; p < end; p += _mem.ReadByte(p + 1))
        {
            var len = _mem.ReadByte(p + 1);
            Assert.True(len >= 2 && p + len <= end, "entry inside the table");
            switch (_mem.ReadByte(p))
            {
                case 0: Assert.Equal(8, len); lapics.Add((_mem.ReadByte(p + 2), _mem.ReadByte(p + 3), _mem.ReadUInt32(p + 4))); break;
                case 1: Assert.Equal(12, len); ioapic = (_mem.ReadByte(p + 2), _mem.ReadUInt32(p + 4), _mem.ReadUInt32(p + 8)); break;
                case 2: Assert.Equal(10, len); Assert.Equal(0, _mem.ReadByte(p + 2)); overrides.Add((_mem.ReadByte(p + 3), _mem.ReadUInt32(p + 4), _mem.ReadUInt16(p + 8))); break;
                case 4: Assert.Equal(6, len); nmi = (_mem.ReadByte(p + 2), _mem.ReadUInt16(p + 3), _mem.ReadByte(p + 5)); break;
                default: Assert.Fail($"unexpected MADT entry type {_mem.ReadByte(p)}"); break;
            }
        }
        Assert.Equal([(0, 0, 1u), (1, 1, 1u), (2, 2, 1u)], lapics);
        Assert.Equal(((byte)0, 0xFEC00000u, 0u), ioapic);       // ID 0: what the IOAPIC's ID register reads at power-on
        // IRQ 0 → GSI 2 edge/high (0101b); SCI IRQ 9 level/high (1101b), as QEMU and bhyve report them.
        Assert.Equal([(0, 2u, (ushort)0x5), (9, 9u, (ushort)0xD)], overrides);
        Assert.Equal(((byte)0xFF, (ushort)0x5, (byte)1), nmi);
    }

    [Fact]
    public void DsdtStartsWithS5PackageAndDefinesSbScope()
    {
        var d = Write().Acpi.Dsdt;
        var table = Table(_mem, d);
        Assert.Equal(2, table[8]); // revision 2: 64-bit integers
        // Name (_S5_, Package (4) { 5, 5, 0, 0 }): NameOp, NameSeg, PackageOp, PkgLength 8, 4 elements, BytePrefix 5 twice, ZeroOp twice.
        Assert.Equal([0x08, (byte)'_', (byte)'S', (byte)'5', (byte)'_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00], table[36..50]);
        Assert.Equal(0x10, table[50]); // ScopeOp
        var sb = System.Text.Encoding.ASCII.GetString(table);
        Assert.Contains("_SB_", sb);
        Assert.Contains("ACPI0007", sb);
    }

    [Fact]
    public void TablesStayInTheReservedBiosAreaAndClearOfTheMpTable()
    {
        var a = Write(cpus: 8, hpet: true);
        var reserved = PhysicalMemoryMap.For(_mem).Single(e => e.Type == E820Type.Reserved);
        Assert.True(reserved.Base <= a.Acpi.Rsdp && a.Mp.End <= reserved.Base + reserved.Length);
        Assert.True(a.Acpi.End <= a.Mp.FloatingPointer, "ACPI tables end before the MP floating pointer");
        Assert.True(a.Acpi.End <= FirmwareLayout.AcpiEnd);
    }
}
