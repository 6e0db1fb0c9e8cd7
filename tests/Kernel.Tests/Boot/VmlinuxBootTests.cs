using System.Buffers.Binary;
using System.Diagnostics;
using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Boot.Linux;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;

namespace Actorvisor.Kernel.Tests.Boot;

/// <summary>
/// An uncompressed vmlinux boots by the 64-bit boot protocol: the one inside Debian's bzImage (LZ4, unpacked
/// with lz4(1)) is loaded as an ELF and reaches start_kernel, whose banner the early console prints.
/// </summary>
public class VmlinuxBootTests
{
    // The setup header fields that locate the compressed kernel inside the protected-mode part.
    private const int OffPayloadOffset = 0x248, OffPayloadLength = 0x24C;

    private static byte[]? ExtractVmlinux(out string? why)
    {
        why = null;
        var path = GuestCache.FindKernel();
        if (path is null)
        {
            why = $"no cached Debian kernel under {GuestCache.Directory} (made by `actorvisor guest fetch`)";
            return null;
        }
        var image = File.ReadAllBytes(path);
        var h = BzImageHeader.Parse(image);
        var offset = h.KernelOffset + BinaryPrimitives.ReadInt32LittleEndian(image.AsSpan(OffPayloadOffset));
        var length = BinaryPrimitives.ReadInt32LittleEndian(image.AsSpan(OffPayloadLength));
        // Linux's LZ4 payload is lz4's legacy format followed by the 4-byte uncompressed size.
        if (!(image[offset] == 0x02 && image[offset + 1] == 0x21 && image[offset + 2] == 0x4C && image[offset + 3] == 0x18))
        {
            why = "the cached kernel's payload is not LZ4 (legacy format)";
            return null;
        }
        try
        {
            using var lz4 = Process.Start(new ProcessStartInfo("lz4", "-dc")
            {
                RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            })!;
            var writer = Task.Run(() =>
            {
                lz4.StandardInput.BaseStream.Write(image, offset, length - 4);
                lz4.StandardInput.Close();
            });
            using var output = new MemoryStream();
            lz4.StandardOutput.BaseStream.CopyTo(output);
            writer.Wait();
            lz4.WaitForExit();
            if (lz4.ExitCode != 0)
            {
                why = $"lz4 failed: {lz4.StandardError.ReadToEnd()}";
                return null;
            }
            return output.ToArray();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            why = "lz4(1) is not installed (Debian package lz4; .ci/run installs it)";
            return null;
        }
    }

    [SkippableFact]
    public void DebiansVmlinuxIsRecognisedAndReachesStartKernel()
    {
        var vmlinux = ExtractVmlinux(out var why);
        Skip.If(vmlinux is null, why);

        var elf = ElfImage.Parse(vmlinux);
        Assert.True(LinuxLoader.IsVmlinux(elf));
        Assert.Contains("Linux", elf.NoteOwners);

        using var mem = new global::Actorvisor.Kernel.Memory.GuestMemory(256UL << 20);
        var kernel = KernelLoader.Load(mem, vmlinux, new BootArguments("vmlinux", "console=ttyS0 earlyprintk=serial,ttyS0,115200"));
        Assert.Equal(KernelFormat.LinuxVmlinux, kernel.Format);
        Assert.Equal(elf.Entry, kernel.Entry);
        Assert.Equal(0x1000000UL, kernel.Entry); // phys_startup_64

        var platform = new TestPlatform();
        var cpu = new SoftwareCpu(0, mem, platform);
        platform.Cpu = cpu;
        kernel.Enter(cpu);
        Assert.Equal(LinuxLoader.ZeroPageAddress, cpu.Gprs[Gpr.RSI]);
        // start_kernel prints the banner within a few tens of millions of instructions; nothing else needs
        // a device this platform lacks before then.
        const long budget = 200_000_000;
        while (cpu.InstructionCount < budget && !platform.Console.ToString().Contains("Linux version"))
        {
            var exit = cpu.Run(5_000_000);
            Assert.NotEqual(CpuExitReason.Shutdown, exit);
        }
        Assert.Contains("Linux version 6.", platform.Console.ToString());
        Assert.Contains("Command line: console=ttyS0 earlyprintk=serial,ttyS0,115200", platform.Console.ToString());
    }

    [Fact]
    public void AnElfWithoutLinuxNotesIsNotAVmlinux()
    {
        var elf = ElfImage.Parse(Actorvisor.TestSupport.GuestImages.HelloElf64("x"));
        Assert.False(LinuxLoader.IsVmlinux(elf));
        Assert.Empty(elf.NoteOwners);
    }
}
