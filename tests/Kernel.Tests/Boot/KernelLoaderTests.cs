using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;
using Actorvisor.TestSupport;

namespace Actorvisor.Kernel.Tests.Boot;

public class KernelLoaderTests
{
    private const ulong Ram = 64 << 20;

    /// <summary>Loads, enters and runs an image on a CPU whose port 0x3F8 is a console.</summary>
    private static (LoadedKernel Kernel, GuestResult Result) Boot(byte[] image)
    {
        var memory = new GuestMemory(Ram);
        var kernel = KernelLoader.Load(memory, image);
        var platform = new TestPlatform();
        var cpu = new SoftwareCpu(0, memory, platform);
        platform.Cpu = cpu;
        kernel.Enter(cpu);
        return (kernel, GuestRunner.RunLoaded(cpu, platform, memory, 100_000));
    }

    [Fact]
    public void FlatBinaryRunsAsABootSectorInRealModeAt7C00()
    {
        var image = GuestImages.HelloFlat("hello");
        var memory = new GuestMemory(Ram);
        var kernel = KernelLoader.Load(memory, image);
        Assert.Equal(KernelFormat.FlatBinary, kernel.Format);
        Assert.Equal(image, memory.GetSpan(0x7C00, image.Length).ToArray());

        var cpu = new SoftwareCpu(0, memory, new TestPlatform());
        kernel.Enter(cpu);
        Assert.False(cpu.ProtectedMode);
        Assert.Equal(16, cpu.Bitness);
        Assert.Equal(0, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(0x7C00UL, cpu.Rip);
        Assert.Equal(0x80UL, cpu.Gprs[Gpr.RDX] & 0xFF); // DL: the boot drive, as a BIOS leaves it

        var (_, r) = Boot(image);
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal("hello", r.Console);
        Assert.False(r.Cpu.IF);
    }

    [Fact]
    public void Elf32RunsInFlatProtectedModeAtItsPhysicalAddress()
    {
        var (kernel, r) = Boot(GuestImages.HelloElf32("elf32", 0x100000));
        Assert.Equal(KernelFormat.Elf32, kernel.Format);
        Assert.Equal(0x100000UL, kernel.Entry);
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal("elf32", r.Console);
        Assert.True(r.Cpu.ProtectedMode);
        Assert.False(r.Cpu.PagingEnabled);
        Assert.Equal(32, r.Cpu.Bitness);
    }

    [Fact]
    public void Elf64RunsInLongModeAtItsPhysicalAddress()
    {
        var (kernel, r) = Boot(GuestImages.HelloElf64("elf64", 0x200000));
        Assert.Equal(KernelFormat.Elf64, kernel.Format);
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal("elf64", r.Console);
        Assert.True(r.Cpu.LongModeActive);
        Assert.Equal(64, r.Cpu.Bitness);
    }

    [Fact]
    public void Elf64LinkedHighIsLoadedAtPAddrAndEnteredThere()
    {
        const ulong phys = 0x300000;
        var code = GuestImages.Hello(64, phys, "high");
        var image = GuestImages.Elf64(0xFFFFFFFF80000000 + phys,
            new ElfSegmentSpec(0xFFFFFFFF80000000 + phys, phys, code, (ulong)code.Length));
        var (kernel, r) = Boot(image);
        Assert.Equal(phys, kernel.Entry);
        Assert.Equal("high", r.Console);
    }

    [Fact]
    public void BssIsZeroedAndSegmentsLandWhereTheySay()
    {
        var memory = new GuestMemory(Ram);
        memory.GetSpan(0x500000, 0x2000).Fill(0xAA);
        var data = new byte[] { 1, 2, 3, 4 };
        var image = GuestImages.Elf64(0x200000,
            new ElfSegmentSpec(0x200000, 0x200000, [0xFA, 0xF4], 2),
            new ElfSegmentSpec(0x500000, 0x500000, data, 0x2000));
        KernelLoader.Load(memory, image);
        Assert.Equal(data, memory.GetSpan(0x500000, 4).ToArray());
        Assert.True(memory.GetSpan(0x500004, 0x2000 - 4).IndexOfAnyExcept((byte)0) < 0);
    }

    [Theory]
    [InlineData(0x2000UL, "setup area")]       // on the boot page tables
    [InlineData(0x7F00UL, "setup area")]       // its end overlaps the last page directory
    [InlineData(0x8000000UL, "outside guest RAM")] // 128 MiB, above 64 MiB of RAM
    [InlineData(0x3FFFF00UL, "outside guest RAM")] // runs off the end of RAM
    public void BadSegmentPlacementIsRefused(ulong address, string expected)
    {
        var image = GuestImages.Elf64(address, new ElfSegmentSpec(address, address, new byte[0x200], 0x200));
        var memory = new GuestMemory(Ram);
        var e = Assert.Throws<KernelImageException>(() => KernelLoader.Load(memory, image));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Elf64AboveTheFourGiBIdentityMapIsRefused()
    {
        var memory = new GuestMemory(5UL << 30); // RAM continues at 4 GiB
        const ulong high = (4UL << 30) + 0x100000;
        var image = GuestImages.Elf64(high, new ElfSegmentSpec(high, high, [0xF4], 1));
        Assert.Contains("above 4 GiB", Assert.Throws<KernelImageException>(() => KernelLoader.Load(memory, image)).Message);
    }

    [Fact]
    public void NothingIsWrittenWhenALaterSegmentIsBad()
    {
        var memory = new GuestMemory(Ram);
        var image = GuestImages.Elf64(0x200000,
            new ElfSegmentSpec(0x200000, 0x200000, [0xFA, 0xF4], 2),
            new ElfSegmentSpec(0x9000000, 0x9000000, [1], 1));
        Assert.Throws<KernelImageException>(() => KernelLoader.Load(memory, image));
        Assert.Equal(0, memory.ReadByte(0x200000));
    }

    [Fact]
    public void OverlappingSegmentsAndAStrayEntryAreRefused()
    {
        var memory = new GuestMemory(Ram);
        var overlapping = GuestImages.Elf64(0x200000,
            new ElfSegmentSpec(0x200000, 0x200000, new byte[0x100], 0x100),
            new ElfSegmentSpec(0x200080, 0x200080, new byte[0x100], 0x100));
        Assert.Contains("overlap", Assert.Throws<KernelImageException>(() => KernelLoader.Load(memory, overlapping)).Message);
        var strayEntry = GuestImages.Elf64(0x900000, new ElfSegmentSpec(0x200000, 0x200000, [0xF4], 1));
        Assert.Contains("entry point", Assert.Throws<KernelImageException>(() => KernelLoader.Load(memory, strayEntry)).Message);
    }

    [Fact]
    public void FlatBinaryMustFitInConventionalMemory()
    {
        var memory = new GuestMemory(Ram);
        var fits = new byte[KernelLoader.ConventionalMemoryEnd - KernelLoader.BootSectorAddress];
        KernelLoader.Load(memory, fits);
        var tooBig = new byte[fits.Length + 1];
        Assert.Contains("does not fit", Assert.Throws<KernelImageException>(() => KernelLoader.Load(memory, tooBig)).Message);
        Assert.Contains("empty", Assert.Throws<KernelImageException>(() => KernelLoader.Load(memory, [])).Message);
    }

    [Fact]
    public void MissingFileIsAClearError()
    {
        var memory = new GuestMemory(Ram);
        var path = Path.Combine(Path.GetTempPath(), $"actorvisor-missing-{Guid.NewGuid():N}.bin");
        var e = Assert.Throws<KernelImageException>(() => KernelLoader.LoadFile(memory, path));
        Assert.Contains(path, e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void LoadFileDetectsTheFormatByMagic()
    {
        var path = GuestImages.WriteTemp(GuestImages.HelloElf64("x"), ".elf");
        try
        {
            var kernel = KernelLoader.LoadFile(new GuestMemory(Ram), path);
            Assert.Equal(KernelFormat.Elf64, kernel.Format);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
