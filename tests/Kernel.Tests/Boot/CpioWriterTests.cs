using System.Diagnostics;
using System.Text;
using Actorvisor.Kernel.Boot;

namespace Actorvisor.Kernel.Tests.Boot;

public class CpioWriterTests
{
    private static byte[] Build()
    {
        var ms = new MemoryStream();
        var w = new CpioWriter(ms);
        w.AddDirectory("bin");
        w.AddFile("/init", "#!/bin/sh\necho hi\n"u8, 0x1ED);
        w.AddSymlink("bin/sh", "busybox");
        w.AddFile("odd", new byte[] { 1, 2, 3 }); // forces data padding
        w.Finish();
        return ms.ToArray();
    }

    [Fact]
    public void HeadersAreNewcWithFourBytePadding()
    {
        var a = Build();
        Assert.Equal("070701", Encoding.ASCII.GetString(a, 0, 6));
        Assert.Equal(0, a.Length % 4);
        var text = Encoding.ASCII.GetString(a);
        Assert.Contains("TRAILER!!!\0", text);
        // The first entry: directory mode 040755, name "bin\0" (4 bytes) → header+name = 114, padded to 116.
        Assert.Equal("000041ED", Encoding.ASCII.GetString(a, 14, 8));
        Assert.Equal("070701", Encoding.ASCII.GetString(a, 116, 6));
    }

    [SkippableFact]
    public void SystemCpioListsAndExtractsTheArchive()
    {
        Skip.IfNot(File.Exists("/usr/bin/cpio") || File.Exists("/bin/cpio"), "cpio(1) is not installed: no oracle for the archive format");
        var dir = Directory.CreateTempSubdirectory("cpio");
        try
        {
            File.WriteAllBytes(Path.Combine(dir.FullName, "a.cpio"), Build());
            var psi = new ProcessStartInfo("sh", ["-c", "cpio -idm --quiet < a.cpio"]) { WorkingDirectory = dir.FullName, RedirectStandardError = true };
            using (var p = Process.Start(psi)!) { p.WaitForExit(); Assert.Equal(0, p.ExitCode); }
            Assert.Equal("#!/bin/sh\necho hi\n", File.ReadAllText(Path.Combine(dir.FullName, "init")));
            Assert.Equal("busybox", new FileInfo(Path.Combine(dir.FullName, "bin/sh")).LinkTarget);
            Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(Path.Combine(dir.FullName, "odd")));
            Assert.True((File.GetUnixFileMode(Path.Combine(dir.FullName, "init")) & UnixFileMode.UserExecute) != 0);
        }
        finally { dir.Delete(true); }
    }
}
