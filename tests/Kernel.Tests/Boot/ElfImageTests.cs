using Actorvisor.Kernel.Boot;
using Actorvisor.TestSupport;

namespace Actorvisor.Kernel.Tests.Boot;

public class ElfImageTests
{
    private static readonly byte[] Code = [0xFA, 0xF4]; // cli; hlt

    [Fact]
    public void ParsesElf64HeaderAndLoadSegments()
    {
        var image = GuestImages.Elf64(0x200010,
            new ElfSegmentSpec(0x200000, 0x200000, Code, 0x20),
            new ElfSegmentSpec(0x300000, 0x300000, [1, 2, 3], 0x1000));
        var elf = ElfImage.Parse(image);
        Assert.True(elf.Is64);
        Assert.Equal(0x200010UL, elf.Entry);
        Assert.Equal(2, elf.Segments.Count);
        Assert.Equal(0x300000UL, elf.Segments[1].PhysicalAddress);
        Assert.Equal(3UL, elf.Segments[1].FileSize);
        Assert.Equal(0x1000UL, elf.Segments[1].MemorySize);
    }

    [Fact]
    public void ParsesElf32()
    {
        var elf = ElfImage.Parse(GuestImages.Elf32(0x100000, new ElfSegmentSpec(0x100000, 0x100000, Code, 2)));
        Assert.False(elf.Is64);
        Assert.Equal(0x100000UL, elf.Entry);
        Assert.Single(elf.Segments);
    }

    [Fact]
    public void VirtualEntryIsTranslatedThroughItsSegment()
    {
        // Linked high, loaded low, as Linux's vmlinux: entry is virtual, p_paddr says where it lands.
        var elf = ElfImage.Parse(GuestImages.Elf64(0xFFFFFFFF81000040,
            new ElfSegmentSpec(0xFFFFFFFF81000000, 0x1000000, Code, 0x100)));
        Assert.Equal(0x1000040UL, elf.PhysicalEntry());
    }

    [Fact]
    public void SkipsSegmentsThatAreNotPtLoad()
    {
        var image = GuestImages.Elf64(0x200000,
            new ElfSegmentSpec(0x200000, 0x200000, Code, 2),
            new ElfSegmentSpec(0x400000, 0x400000, Code, 2));
        // Turn the second program header into PT_NOTE (4).
        image[64 + 56] = 4;
        var elf = ElfImage.Parse(image);
        Assert.Single(elf.Segments);
    }

    [Theory]
    [InlineData(10, "identification is truncated")]   // inside e_ident
    [InlineData(40, "header is truncated")]           // inside the ELF64 header
    [InlineData(100, "run past the end of the file")] // inside the program header table
    public void TruncatedHeadersAreRefused(int length, string expected)
    {
        var image = GuestImages.Elf64(0x200000, new ElfSegmentSpec(0x200000, 0x200000, Code, 2));
        var e = Assert.Throws<KernelImageException>(() => ElfImage.Parse(image.AsSpan(0, length)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void SegmentBytesPastTheEndOfTheFileAreRefused()
    {
        var image = GuestImages.Elf64(0x200000, new ElfSegmentSpec(0x200000, 0x200000, new byte[64], 64));
        var e = Assert.Throws<KernelImageException>(() => ElfImage.Parse(image.AsSpan(0, image.Length - 1)));
        Assert.Contains("past the end of the file", e.Message);
    }

    [Fact]
    public void FileSizeAboveMemorySizeIsRefused()
    {
        var image = GuestImages.Elf64(0x200000, new ElfSegmentSpec(0x200000, 0x200000, new byte[16], 8));
        Assert.Contains("exceeds memory size", Assert.Throws<KernelImageException>(() => ElfImage.Parse(image)).Message);
    }

    [Fact]
    public void WrongMachineTypeAndEndiannessAreRefused()
    {
        var seg = new ElfSegmentSpec(0x200000, 0x200000, Code, 2);
        Assert.Contains("machine", Assert.Throws<KernelImageException>(() =>
            ElfImage.Parse(GuestImages.Elf(true, 0x200000, [seg], machine: 3))).Message);
        Assert.Contains("ET_EXEC", Assert.Throws<KernelImageException>(() =>
            ElfImage.Parse(GuestImages.Elf(true, 0x200000, [seg], type: 3))).Message);
        var bigEndian = GuestImages.Elf64(0x200000, seg);
        bigEndian[5] = 2;
        Assert.Contains("little-endian", Assert.Throws<KernelImageException>(() => ElfImage.Parse(bigEndian)).Message);
        var badClass = GuestImages.Elf64(0x200000, seg);
        badClass[4] = 3;
        Assert.Contains("class", Assert.Throws<KernelImageException>(() => ElfImage.Parse(badClass)).Message);
    }

    [Fact]
    public void FileWithoutLoadableSegmentsIsRefused()
    {
        var image = GuestImages.Elf64(0x200000, new ElfSegmentSpec(0x200000, 0x200000, Code, 2));
        image[64] = 4; // PT_NOTE
        Assert.Contains("PT_LOAD", Assert.Throws<KernelImageException>(() => ElfImage.Parse(image)).Message);
    }
}
