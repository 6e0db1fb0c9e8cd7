using Actorvisor.Kernel.Boot.Acpi;

namespace Actorvisor.Kernel.Tests.Boot.Acpi;

/// <summary>The AML encodings of ACPI 6.3 chapter 20, checked against values worked out by hand from the grammar.</summary>
public class AmlTests
{
    [Theory]
    [InlineData(0, new byte[] { 0x00 })]
    [InlineData(1, new byte[] { 0x01 })]
    [InlineData(5, new byte[] { 0x0A, 0x05 })]
    [InlineData(0x1234, new byte[] { 0x0B, 0x34, 0x12 })]
    [InlineData(0x12345678, new byte[] { 0x0C, 0x78, 0x56, 0x34, 0x12 })]
    public void IntegersTakeTheShortestForm(long value, byte[] expected) => Assert.Equal(expected, Aml.Integer((ulong)value));

    [Fact]
    public void PkgLengthCountsItselfAndGrowsPast63()
    {
        Assert.Equal(0x3F, Aml.WithPkgLength(new byte[62])[0]);     // 62 + 1 = 63: one byte
        var two = Aml.WithPkgLength(new byte[63]);                  // 63 + 2 = 65 = 0x41: lead 01xx_0001, then 0x04
        Assert.Equal([0x41, 0x04], two[..2]);
        Assert.Equal(65, two.Length);
        var big = Aml.WithPkgLength(new byte[5000]);                // 5000 + 3 = 5003 = 0x138B: lead 10xx_1011, 0x38, 0x01
        Assert.Equal([0x8B, 0x38, 0x01], big[..3]);
    }

    [Fact]
    public void EisaIdPacksThreeLettersAndFourHexDigits() =>
        Assert.Equal(Aml.Integer(0x0105D041), Aml.EisaId("PNP0501")); // the _HID of every 16550 in a PC's DSDT

    [Fact]
    public void NameStringsUseRootDualAndMultiPrefixes()
    {
        Assert.Equal("_SB_"u8.ToArray(), Aml.NameString("_SB"));
        Assert.Equal([(byte)'\\', .. "_S5_"u8], Aml.NameString("\\_S5"));
        Assert.Equal([0x2E, .. "_SB_PCI0"u8], Aml.NameString("_SB.PCI0"));
        Assert.Equal([(byte)'\\', 0x2F, 3, .. "_SB_PCI0ISA_"u8], Aml.NameString("\\_SB.PCI0.ISA"));
        Assert.Throws<ArgumentException>(() => Aml.NameString("toolong"));
    }

    [Fact]
    public void ResourceTemplateIsABufferClosedByAnEndTag()
    {
        var crs = Aml.Resources.Template(Aml.Resources.Io(0x3F8, 8), Aml.Resources.IrqNoFlags(4));
        // BufferOp, PkgLength 16, BytePrefix 13, IO descriptor (8), IRQ descriptor (3), End tag (2).
        Assert.Equal([0x11, 0x10, 0x0A, 0x0D, 0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00], crs);
    }
}
