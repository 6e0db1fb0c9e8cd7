using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Actorvisor.Host.Guest;

namespace Actorvisor.Actors.Tests.Host.Guest;

public class KernelModulesTests
{
    /// <summary>A minimal ELF64 relocatable with a section-name table and a .modinfo section.</summary>
    internal static byte[] FakeModule(string modinfo)
    {
        var shstr = "\0.shstrtab\0.modinfo\0"u8.ToArray();
        var info = Encoding.ASCII.GetBytes(modinfo.Replace(';', '\0') + "\0");
        var shoff = 64 + shstr.Length + info.Length;
        shoff = (shoff + 7) & ~7;
        var elf = new byte[shoff + 3 * 64];
        elf[0] = 0x7F; elf[1] = (byte)'E'; elf[2] = (byte)'L'; elf[3] = (byte)'F'; elf[4] = 2; elf[5] = 1;
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(0x28), (ulong)shoff);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x3A), 64);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x3C), 3);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x3E), 1);
        shstr.CopyTo(elf, 64);
        info.CopyTo(elf, 64 + shstr.Length);
        void Sh(int i, uint name, int off, int size)
        {
            var h = elf.AsSpan(shoff + i * 64);
            BinaryPrimitives.WriteUInt32LittleEndian(h, name);
            BinaryPrimitives.WriteUInt64LittleEndian(h[0x18..], (ulong)off);
            BinaryPrimitives.WriteUInt64LittleEndian(h[0x20..], (ulong)size);
        }
        Sh(1, 1, 64, shstr.Length);
        Sh(2, 11, 64 + shstr.Length, info.Length);
        return elf;
    }

    [Fact]
    public void ReadsNameAndDependsFromModinfo()
    {
        var info = KernelModules.ReadModinfo(FakeModule("license=GPL;depends=net_failover,virtio_ring;name=virtio_net"));
        Assert.Equal("virtio_net", info["name"]);
        Assert.Equal("net_failover,virtio_ring", info["depends"]);
        Assert.Throws<InvalidDataException>(() => KernelModules.ReadModinfo(new byte[100]));
    }

    [Fact]
    public void ModulesDepListsTheClosureLastLoadedFirst()
    {
        var root = Directory.CreateTempSubdirectory("mods");
        try
        {
            void Mod(string rel, string info)
            {
                var p = Path.Combine(root.FullName, rel);
                Directory.CreateDirectory(Path.GetDirectoryName(p)!);
                File.WriteAllBytes(p, FakeModule(info));
            }
            Mod("kernel/net/core/failover.ko", "name=failover;depends=");
            Mod("kernel/drivers/net/net_failover.ko", "name=net_failover;depends=failover");
            Mod("kernel/drivers/virtio/virtio_ring.ko", "name=virtio_ring;depends=");
            Mod("kernel/drivers/net/virtio_net.ko", "name=virtio_net;depends=net_failover,virtio_ring");
            Mod("kernel/drivers/char/hw_random/virtio-rng.ko", "name=virtio_rng;depends=virtio_ring");
            var m = new KernelModules(root.FullName);

            var order = m.Closure(["virtio_net", "virtio-rng"]);
            Assert.True(order.ToList().IndexOf("failover") < order.ToList().IndexOf("net_failover"));
            Assert.True(order.ToList().IndexOf("net_failover") < order.ToList().IndexOf("virtio_net"));
            Assert.Equal(5, order.Count);

            var dep = m.ModulesDep(["virtio_net"]);
            // depmod's order: modprobe loads from the end of the list backwards.
            Assert.StartsWith("kernel/drivers/net/virtio_net.ko:", dep);
            var deps = dep.Split(':')[1].Trim().Split(' ');
            Assert.Equal(3, deps.Length);
            Assert.True(Array.IndexOf(deps, "kernel/net/core/failover.ko") > Array.IndexOf(deps, "kernel/drivers/net/net_failover.ko"));
            Assert.Throws<InvalidOperationException>(() => m.Closure(["no_such_module"]));
        }
        finally { root.Delete(true); }
    }
}

public class InitramfsBuilderTests
{
    [SkippableFact]
    public void ArchiveHasInitBusyboxLinksAndConsole()
    {
        Skip.IfNot(File.Exists("/usr/bin/cpio") || File.Exists("/bin/cpio"), "cpio(1) is not installed: no oracle for the archive");
        var dir = Directory.CreateTempSubdirectory("initramfs");
        try
        {
            var archive = Path.Combine(dir.FullName, "i.cpio");
            using (var f = File.Create(archive))
                InitramfsBuilder.Build(f, "#!fake-busybox"u8.ToArray(), "6.1.0-test", null, "#!/bin/sh\necho marker\n");
            var psi = new ProcessStartInfo("sh", ["-c", "cpio -itv < i.cpio"]) { WorkingDirectory = dir.FullName, RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var listing = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
            Assert.Matches(@"(?m)^-rwxr-xr-x .* init$", listing);
            Assert.Matches(@"(?m)^crw------- .* 5,\s+1 .* dev/console$", listing);
            Assert.Matches(@"(?m)^lrwxrwxrwx .* bin/sh -> busybox$", listing);
            Assert.Matches(@"(?m)^-rwxr-xr-x .* bin/busybox$", listing);
            Assert.Contains("lib/modules/6.1.0-test", listing);
        }
        finally { dir.Delete(true); }
    }

    [SkippableFact]
    public void ExtraFilesLandAtTheirPathsWithTheirModes()
    {
        Skip.IfNot(File.Exists("/usr/bin/cpio") || File.Exists("/bin/cpio"), "cpio(1) is not installed: no oracle for the archive");
        var dir = Directory.CreateTempSubdirectory("initramfs-extra");
        try
        {
            var tool = Path.Combine(dir.FullName, "tool");
            File.WriteAllText(tool, "#!/bin/sh\necho tool\n");
            File.SetUnixFileMode(tool, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var data = Path.Combine(dir.FullName, "data.txt");
            File.WriteAllText(data, "payload-42");
            var extra = new[]
            {
                ExtraFile.Parse(tool, out _)!,
                ExtraFile.Parse(data + ":/opt/bench/data.txt", out _)!,
            };
            var archive = Path.Combine(dir.FullName, "i.cpio");
            using (var f = File.Create(archive))
                InitramfsBuilder.Build(f, "#!fake-busybox"u8.ToArray(), "6.1.0-test", null, "#!/bin/sh\n", extra);
            var psi = new ProcessStartInfo("sh", ["-c", "cpio -itv < i.cpio && mkdir x && cd x && cpio -id --quiet < ../i.cpio && cat opt/bench/data.txt"])
                { WorkingDirectory = dir.FullName, RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var listing = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
            Assert.Matches(@"(?m)^-rwxr-xr-x .* bin/tool$", listing);
            Assert.Matches(@"(?m)^-rw-r--r-- .* opt/bench/data.txt$", listing);
            Assert.Matches(@"(?m)^drwx.* opt$", listing);
            Assert.Matches(@"(?m)^drwx.* opt/bench$", listing);
            Assert.EndsWith("payload-42", listing.TrimEnd());
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void TheCliRefusesAMissingExtraFileBeforeTouchingTheGuestCache()
    {
        var dir = Directory.CreateTempSubdirectory("initramfs-cli");
        try
        {
            var init = Path.Combine(dir.FullName, "init.sh");
            File.WriteAllText(init, "#!/bin/sh\n");
            var output = Path.Combine(dir.FullName, "out.cpio");
            var stderr = new StringWriter();
            var status = Actorvisor.Host.ActorvisorCli.Run(
                ["guest", "initramfs", "--init", init, "-o", output, "--file", Path.Combine(dir.FullName, "missing") + ":/bin/x"],
                Stream.Null, stderr);
            Assert.Equal(4, status);
            Assert.Contains("--file", stderr.ToString());
            Assert.Contains("no such file", stderr.ToString());
            Assert.False(File.Exists(output));
        }
        finally { dir.Delete(true); }
    }

    [Theory]
    [InlineData("/nonexistent/file", "no such file")]
    [InlineData("/etc/hostname:/bin/../etc/x", "plain guest path")]
    [InlineData("/etc/hostname:/", "plain guest path")]
    [InlineData(":/bin/x", "plain guest path")]
    public void ExtraFileSpecsThatCannotBeHonouredAreRefused(string spec, string message)
    {
        Assert.Null(ExtraFile.Parse(spec, out var error));
        Assert.Contains(message, error);
    }

    [SkippableFact]
    public void DefaultGuestFromTheCacheCarriesTheVirtioModules()
    {
        var files = DebianGuest.FindCached();
        Skip.If(files is null, "no cached default guest (made by `actorvisor guest fetch`, which .ci/run runs)");
        var m = new KernelModules(files!.ModulesRoot);
        foreach (var name in InitramfsBuilder.VirtioModules) Assert.True(m.Contains(name), name);
        Assert.Contains("virtio_ring", m.Closure(["virtio_net"]));
        var dep = File.ReadAllText(Path.Combine(files.ModulesRoot, "modules.dep"));
        Assert.Contains("virtio_net.ko:", dep);
        Assert.True(new FileInfo(files.Initramfs).Length > 1_000_000);
    }
}
