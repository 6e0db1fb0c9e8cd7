using System.Text;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;
using Actorvisor.TestSupport;

namespace Actorvisor.Kernel.Tests.Boot;

/// <summary>
/// Multiboot loading checked from the guest's side: our own test kernels read the information structure
/// and print what they find on the console; the tests compare that with the Multiboot spec and the VM.
/// </summary>
public class MultibootLoaderTests
{
    private const ulong Ram = 64 << 20;
    private const uint ExitValue = 0x2A;

    private static readonly MultibootModule[] TwoModules =
    [
        new(Encoding.ASCII.GetBytes("first module bytes"), "mod-a.bin alpha"),
        new(Encoding.ASCII.GetBytes("second"), "mod-b.bin beta gamma"),
    ];

    private static (LoadedKernel Kernel, GuestResult Result) Boot(byte[] image, BootArguments args, GuestMemory? memory = null)
    {
        memory ??= new GuestMemory(Ram);
        var kernel = KernelLoader.Load(memory, image, args);
        var platform = new TestPlatform();
        var cpu = new SoftwareCpu(0, memory, platform);
        platform.Cpu = cpu;
        kernel.Enter(cpu);
        return (kernel, GuestRunner.RunLoaded(cpu, platform, memory, 2_000_000));
    }

    private static Dictionary<string, List<string>> Fields(string console)
    {
        var d = new Dictionary<string, List<string>>();
        foreach (var line in console.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = line.IndexOf('=');
            Assert.True(eq > 0, $"unexpected console line '{line}'");
            var key = line[..eq];
            if (!d.TryGetValue(key, out var list)) d[key] = list = new();
            list.Add(line[(eq + 1)..]);
        }
        return d;
    }

    private static void AssertGuestSawTheStandardInfo(Dictionary<string, List<string>> f, string cmdline)
    {
        Assert.Equal("2BADB002", f["magic"].Single());
        Assert.Equal("00000002", f["eflags"].Single()); // IF = 0, VM = 0: only the always-one bit
        Assert.Equal("00000031", f["cr0"].Single());    // PE | ET | NE: protected mode, paging off
        // mem, cmdline, mods, mmap, boot loader name (spec 3.3 bits 0, 2, 3, 6, 9).
        Assert.Equal("0000024D", f["flags"].Single());
        Assert.Equal("0000027F", f["mem_lower"].Single()); // 639 KiB: up to the EBDA
        Assert.Equal("0000FC00", f["mem_upper"].Single()); // 63 MiB above 1 MiB in a 64 MiB guest
        Assert.Equal(cmdline, f["cmdline"].Single());
        Assert.Equal(
        [
            "0000000000000000 000000000009FC00 00000001",
            "000000000009FC00 0000000000060400 00000002",
            "0000000000100000 0000000003F00000 00000001",
        ], f["mmap"]);
        Assert.Equal("actorvisor", f["loader"].Single());
        var info = Convert.ToUInt32(f["info"].Single(), 16);
        Assert.True(info >= 0x100000, $"the info structure at 0x{info:x} is in memory the kernel owns");
    }

    [Fact]
    public void ElfKernelReadsItsInfoCommandLineModulesAndMemoryMap()
    {
        var image = MultibootKernels.Elf(0x100000, g => MultibootKernels.Report(g, ExitValue));
        var (kernel, r) = Boot(image, new BootArguments("/boot/mbtest.elf", "console=ttyS0 x=1", TwoModules));

        Assert.Equal(KernelFormat.Multiboot, kernel.Format);
        Assert.Equal(ExitValue, r.ExitValue);
        var f = Fields(r.Console);
        AssertGuestSawTheStandardInfo(f, "/boot/mbtest.elf console=ttyS0 x=1");
        Assert.Equal("00000002", f["mods_count"].Single());
        // The header asks for page-aligned modules (flag 0): both start on a page.
        Assert.Equal(["mod-a.bin alpha:first module bytes:00000000", "mod-b.bin beta gamma:second:00000000"], f["module"]);
        // The kernel wiped the first two pages and still read everything: nothing of the loader's was there.
        Assert.True(r.Memory.GetSpan(0, 0x2000).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void FlatKernelIsPlacedByTheHeadersAddressFieldsAndItsBssZeroed()
    {
        const uint at = 0x200000;
        const uint bss = 0x3000;
        var memory = new GuestMemory(Ram);
        memory.GetSpan(at, 0x10000).Fill(0xAA);
        var image = MultibootKernels.Flat(at, g => MultibootKernels.Report(g, ExitValue), bss: bss);
        Assert.False(ElfImage.HasElfMagic(image));

        var (kernel, r) = Boot(image, new BootArguments("mbflat", null, TwoModules), memory);
        Assert.Equal(KernelFormat.Multiboot, kernel.Format);
        Assert.Equal(at + 32UL, kernel.Entry); // entry_addr: right after the 32-byte header
        Assert.Equal(image, memory.GetSpan(at, image.Length).ToArray());
        Assert.True(memory.GetSpan(at + (ulong)image.Length, (int)bss).IndexOfAnyExcept((byte)0) < 0, "bss not zeroed");

        Assert.Equal(ExitValue, r.ExitValue);
        var f = Fields(r.Console);
        AssertGuestSawTheStandardInfo(f, "mbflat"); // no command line given: argv[0] alone
        // Without flag 0 modules are only 8-byte aligned: the second follows the first's 18 bytes.
        Assert.Equal(["mod-a.bin alpha:first module bytes:00000000", "mod-b.bin beta gamma:second:00000018"], f["module"]);
    }

    [Fact]
    public void EntryStateIsFlat32WithTheBootGdtOutsideTheFirstPages()
    {
        var memory = new GuestMemory(Ram);
        var image = MultibootKernels.Elf(0x100000, g => g.A.hlt());
        var kernel = KernelLoader.Load(memory, image, new BootArguments("k"));
        var cpu = new SoftwareCpu(0, memory, new TestPlatform());
        kernel.Enter(cpu);
        Assert.Equal(MultibootHeader.BootloaderMagic, (uint)cpu.Gprs[Gpr.RAX]);
        Assert.Equal(kernel.MultibootInfoAddress, (uint)cpu.Gprs[Gpr.RBX]);
        Assert.Equal(0x10000CUL, cpu.Rip);
        Assert.Equal(32, cpu.Bitness);
        Assert.False(cpu.PagingEnabled);
        Assert.False(cpu.IF);
        Assert.True(cpu.Gdtr.Base >= 0x100000);
        Assert.Equal(0UL, cpu.Segs[Seg.CS].Base);
        Assert.Equal(0xFFFF_FFFFU, cpu.Segs[Seg.DS].Limit);
        // Nothing was written below 0x2000 (the kernel's own pages): no GDT at CpuSetup's 0x1000.
        Assert.True(memory.GetSpan(0, 0x2000).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public void AMultibootHeaderWinsOverThePlainElf32Rule()
    {
        var plain = GuestImages.HelloElf32("x");
        Assert.Equal(KernelFormat.Elf32, KernelLoader.Load(new GuestMemory(Ram), plain).Format);
        var mb = MultibootKernels.Elf(0x100000, g => g.A.hlt());
        Assert.Equal(KernelFormat.Multiboot, KernelLoader.Load(new GuestMemory(Ram), mb).Format);
    }

    [Fact]
    public void HeaderFlagsBeyondWhatWeProvideAreRefused()
    {
        var image = MultibootKernels.Elf(0x100000, g => g.A.hlt(), flags: 1 << 3);
        var e = Assert.Throws<KernelImageException>(() => KernelLoader.Load(new GuestMemory(Ram), image));
        Assert.Contains("requires features 0x8", e.Message);
    }

    [Fact]
    public void ANonElfImageNeedsTheAddressFields()
    {
        // A header without flag 16 at the start of a flat file: nothing says where to load it.
        var image = new byte[64];
        BitConverter.GetBytes(MultibootKernels.HeaderMagic).CopyTo(image, 0);
        BitConverter.GetBytes(unchecked(0u - MultibootKernels.HeaderMagic)).CopyTo(image, 8);
        var e = Assert.Throws<KernelImageException>(() => KernelLoader.Load(new GuestMemory(Ram), image));
        Assert.Contains("address fields", e.Message);
    }

    [Fact]
    public void ACommandLineForAKernelThatIsNotMultibootIsRefused()
    {
        var e = Assert.Throws<KernelImageException>(() =>
            KernelLoader.Load(new GuestMemory(Ram), GuestImages.HelloElf64("x"), new BootArguments("k", "quiet")));
        Assert.Contains("ELF64", e.Message);
        Assert.Contains("Multiboot", e.Message);
    }

    [Fact]
    public void ModulesThatDoNotFitLeaveMemoryUntouched()
    {
        var memory = new GuestMemory(2 << 20);
        var image = MultibootKernels.Elf(0x100000, g => g.A.hlt());
        var e = Assert.Throws<KernelImageException>(() =>
            KernelLoader.Load(memory, image, new BootArguments("k", null, [new MultibootModule(new byte[2 << 20], "big")])));
        Assert.Contains("more memory", e.Message);
        Assert.Equal(0, memory.ReadByte(0x100000)); // the kernel was not written either
    }

    [Fact]
    public void LoadFileGivesTheKernelsFileNameAsArgv0AndReadsModuleFiles()
    {
        var kernelPath = GuestImages.WriteTemp(MultibootKernels.Elf(0x100000, g => MultibootKernels.Report(g, 1)), ".elf");
        var modPath = GuestImages.WriteTemp(Encoding.ASCII.GetBytes("payload"), ".mod");
        try
        {
            var memory = new GuestMemory(Ram);
            var kernel = KernelLoader.LoadFile(memory, kernelPath, "a b", [(modPath, "x,y"), (modPath, null)]);
            var platform = new TestPlatform();
            var cpu = new SoftwareCpu(0, memory, platform);
            platform.Cpu = cpu;
            kernel.Enter(cpu);
            var f = Fields(GuestRunner.RunLoaded(cpu, platform, memory, 2_000_000).Console);
            Assert.Equal($"{kernelPath} a b", f["cmdline"].Single());
            Assert.Equal([$"{modPath} x,y:payload:00000000", $"{modPath}:payload:00000000"], f["module"]);
        }
        finally
        {
            File.Delete(kernelPath);
            File.Delete(modPath);
        }
    }
}
