using System.Buffers.Binary;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Boot.Linux;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;

namespace Actorvisor.Kernel.Tests.Boot;

public class LinuxLoaderTests
{
    /// <summary>A minimal bzImage: setup header fields a 2.15 kernel has, 4 setup sectors, a small "kernel".</summary>
    private static byte[] FakeBzImage(ushort version = 0x20F, ushort xloadflags = 0x7F, byte loadflags = 1)
    {
        var img = new byte[5 * 512 + 0x1000];
        img[BzImageHeader.OffSetupSects] = 4;
        BinaryPrimitives.WriteUInt16LittleEndian(img.AsSpan(BzImageHeader.OffBootFlag), 0xAA55);
        img[0x200] = 0xEB; img[0x201] = 0x6A; // jmp over the header: it ends at 0x26C
        BinaryPrimitives.WriteUInt32LittleEndian(img.AsSpan(BzImageHeader.OffHeader), BzImageHeader.HeaderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(img.AsSpan(BzImageHeader.OffVersion), version);
        img[BzImageHeader.OffLoadFlags] = loadflags;
        BinaryPrimitives.WriteUInt32LittleEndian(img.AsSpan(BzImageHeader.OffInitrdAddrMax), 0x7FFF_FFFF);
        BinaryPrimitives.WriteUInt16LittleEndian(img.AsSpan(BzImageHeader.OffXLoadFlags), xloadflags);
        BinaryPrimitives.WriteUInt32LittleEndian(img.AsSpan(BzImageHeader.OffCmdlineSize), 2047);
        BinaryPrimitives.WriteUInt64LittleEndian(img.AsSpan(BzImageHeader.OffPrefAddress), 0x100_0000);
        BinaryPrimitives.WriteUInt32LittleEndian(img.AsSpan(BzImageHeader.OffInitSize), 0x10_0000);
        img[5 * 512] = 0xF4; // the protected-mode kernel starts with HLT...
        img[5 * 512 + 0x200] = 0xF4; // ...and so does its 64-bit entry
        return img;
    }

    [Fact]
    public void RejectsWhatIsNotAUsableBzImage()
    {
        Assert.Contains("not a Linux bzImage", Assert.Throws<KernelImageException>(() => BzImageHeader.Parse(new byte[4096])).Message);
        Assert.Contains("too old", Assert.Throws<KernelImageException>(() => BzImageHeader.Parse(FakeBzImage(version: 0x20A))).Message);
        Assert.Contains("64-bit entry", Assert.Throws<KernelImageException>(() => BzImageHeader.Parse(FakeBzImage(xloadflags: 0))).Message);
        Assert.Contains("zImage", Assert.Throws<KernelImageException>(() => BzImageHeader.Parse(FakeBzImage(loadflags: 0))).Message);
    }

    [Fact]
    public void LoadsKernelCmdlineInitrdAndZeroPageAndEntersLongMode()
    {
        using var mem = new GuestMemory(64 << 20);
        var cpu = new SoftwareCpu(0, mem, new TestPlatform());
        var initrd = Enumerable.Range(0, 10000).Select(i => (byte)i).ToArray();
        var l = LinuxLoader.LoadBzImage(mem, FakeBzImage(), new LinuxBootArguments("console=ttyS0 quiet", initrd));
        LinuxLoader.Enter(cpu, l.Entry);

        Assert.Equal(0x100_0000UL, l.KernelAddress);
        Assert.Equal(0x100_0200UL, cpu.Rip);
        Assert.Equal(64, cpu.Bitness);
        Assert.Equal(LinuxLoader.ZeroPageAddress, cpu.Gprs[Gpr.RSI]);
        Assert.Equal(LinuxLoader.BootCs, cpu.Segs[Seg.CS].Selector);
        Assert.Equal(LinuxLoader.BootDs, cpu.Segs[Seg.SS].Selector);
        Assert.False(cpu.IF);

        var zp = LinuxLoader.ZeroPageAddress;
        Assert.Equal(BzImageHeader.HeaderMagic, mem.ReadUInt32(zp + BzImageHeader.OffHeader));
        Assert.Equal(0xFF, mem.ReadByte(zp + BzImageHeader.OffTypeOfLoader));
        Assert.Equal("console=ttyS0 quiet\0", System.Text.Encoding.ASCII.GetString(mem.GetSpan(mem.ReadUInt32(zp + BzImageHeader.OffCmdLinePtr), 20)));
        var rd = mem.ReadUInt32(zp + BzImageHeader.OffRamdiskImage);
        Assert.Equal(0u, rd & 0xFFF);
        Assert.Equal((uint)initrd.Length, mem.ReadUInt32(zp + BzImageHeader.OffRamdiskSize));
        Assert.Equal(initrd, mem.GetSpan(rd, initrd.Length).ToArray());
        Assert.True(rd + (ulong)initrd.Length <= 64UL << 20);

        // e820: RAM, the legacy hole, RAM from 1 MiB to the top.
        Assert.Equal(3, mem.ReadByte(zp + ZeroPage.OffE820Entries));
        var e2 = zp + ZeroPage.OffE820Table + 2 * ZeroPage.E820EntrySize;
        Assert.Equal(0x100000UL, mem.ReadUInt64(e2));
        Assert.Equal((64UL << 20) - 0x100000, mem.ReadUInt64(e2 + 8));
        Assert.Equal(1u, mem.ReadUInt32(e2 + 16));

        // The kernel's first instruction at the entry is reachable through the identity map.
        var r = GuestRunner.RunLoaded(cpu, (TestPlatform)cpu.Platform, mem, 10);
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal(0x100_0201UL, cpu.Rip);
    }

    [Fact]
    public void KernelLoaderBootsABzImageByTheLinuxProtocolWithItsInitrdAndRsdp()
    {
        using var mem = new GuestMemory(64 << 20);
        var initrd = new byte[5000];
        var k = KernelLoader.Load(mem, FakeBzImage(), new BootArguments("bz", "quiet") { Initrd = initrd, AcpiRsdp = 0xE0000 });
        Assert.Equal(KernelFormat.LinuxBzImage, k.Format);
        Assert.Equal(0x100_0200UL, k.Entry);
        Assert.Equal((ulong)initrd.Length, k.Linux!.InitrdSize);
        Assert.Equal(0xE0000UL, mem.ReadUInt64(LinuxLoader.ZeroPageAddress + ZeroPage.OffAcpiRsdpAddr));
        var cpu = new SoftwareCpu(0, mem, new TestPlatform());
        k.Enter(cpu);
        Assert.Equal(0x100_0200UL, cpu.Rip);
        Assert.Equal(LinuxLoader.ZeroPageAddress, cpu.Gprs[Gpr.RSI]);
    }

    [Fact]
    public void InitrdsAndModulesGoOnlyToTheKernelsThatTakeThem()
    {
        using var mem = new GuestMemory(64 << 20);
        Assert.Contains("modules are for Multiboot kernels", Assert.Throws<KernelImageException>(() =>
            KernelLoader.Load(mem, FakeBzImage(), new BootArguments("bz", null, [new MultibootModule([1], "m")]))).Message);
        Assert.Contains("not a bzImage or vmlinux", Assert.Throws<KernelImageException>(() =>
            KernelLoader.Load(mem, Actorvisor.TestSupport.GuestImages.HelloElf64("x"), new BootArguments("e") { Initrd = [1, 2] })).Message);
        Assert.Contains("not a bzImage or vmlinux", Assert.Throws<KernelImageException>(() =>
            KernelLoader.Load(mem, "just some text, not a kernel"u8.ToArray(), new BootArguments("t", "console=ttyS0"))).Message);
    }

    [Fact]
    public void RefusesTooLittleMemoryAndTooLongCommandLines()
    {
        using var small = new GuestMemory(16 << 20);
        Assert.Contains("more memory", Assert.Throws<KernelImageException>(() =>
            LinuxLoader.LoadBzImage(small, FakeBzImage(), new LinuxBootArguments("", []))).Message);
        using var mem = new GuestMemory(64 << 20);
        Assert.Contains("at most 2047", Assert.Throws<KernelImageException>(() =>
            LinuxLoader.LoadBzImage(mem, FakeBzImage(), new LinuxBootArguments(new string('x', 3000), []))).Message);
    }

    [SkippableFact]
    public void ParsesDebiansKernel()
    {
        var path = GuestCache.FindKernel();
        Skip.If(path is null, $"no cached Debian kernel under {GuestCache.Directory} (made by `actorvisor guest fetch`)");
        var h = BzImageHeader.Parse(File.ReadAllBytes(path!));
        Assert.True(h.Version >= 0x20F);
        Assert.True(h.Relocatable);
        Assert.Equal(0x100_0000UL, h.PrefAddress);
        Assert.True(h.InitSize > 16 << 20);
        Assert.True((h.XLoadFlags & BzImageHeader.XlfKernel64) != 0);
    }
}
