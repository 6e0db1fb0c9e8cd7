using System.Text;

namespace Actorvisor.Kernel.Boot;

/// <summary>
/// Writes a "newc" (SVR4, no CRC) cpio archive, the format the Linux kernel unpacks as an initramfs:
/// per entry a 110-byte ASCII header of hex fields, the NUL-terminated name padded to 4 bytes, then the
/// data padded to 4 bytes; the archive ends with the entry "TRAILER!!!".
/// </summary>
public sealed class CpioWriter(Stream output)
{
    public const uint ModeDirectory = 0x4000, ModeRegular = 0x8000, ModeSymlink = 0xA000, ModeCharDevice = 0x2000;
    private uint _inode = 1;
    private bool _finished;

    public void AddDirectory(string path, uint permissions = 0x1ED /* 0755 */) =>
        AddEntry(path, ModeDirectory | permissions, [], nlink: 2);

    public void AddFile(string path, ReadOnlySpan<byte> data, uint permissions = 0x1A4 /* 0644 */) =>
        AddEntry(path, ModeRegular | permissions, data);

    public void AddSymlink(string path, string target) =>
        AddEntry(path, ModeSymlink | 0x1FF, Encoding.UTF8.GetBytes(target));

    public void AddCharDevice(string path, uint major, uint minor, uint permissions = 0x180 /* 0600 */) =>
        AddEntry(path, ModeCharDevice | permissions, [], rdevMajor: major, rdevMinor: minor);

    /// <summary>Writes the trailer. The archive is complete only after this.</summary>
    public void Finish()
    {
        if (_finished) return;
        AddEntry("TRAILER!!!", 0, [], inode: 0, nlink: 1);
        _finished = true;
    }

    private void AddEntry(string path, uint mode, ReadOnlySpan<byte> data, uint? inode = null, uint nlink = 1,
        uint rdevMajor = 0, uint rdevMinor = 0)
    {
        if (_finished) throw new InvalidOperationException("the archive is already finished");
        path = path.TrimStart('/');
        if (path.Length == 0) throw new ArgumentException("an entry needs a name", nameof(path));
        var name = Encoding.UTF8.GetBytes(path + "\0");
        var header = new StringBuilder("070701");
        foreach (var field in new[]
                 {
                     inode ?? _inode++, mode, 0u /* uid */, 0u /* gid */, nlink, 0u /* mtime */, (uint)data.Length,
                     0u, 0u /* dev major, minor */, rdevMajor, rdevMinor, (uint)name.Length, 0u /* check */,
                 })
            header.Append(field.ToString("X8"));
        var h = Encoding.ASCII.GetBytes(header.ToString());
        output.Write(h);
        output.Write(name);
        Pad(h.Length + name.Length);
        output.Write(data);
        Pad(data.Length);
    }

    private void Pad(int length)
    {
        var pad = (4 - length % 4) % 4;
        for (var i = 0; i < pad; i++) output.WriteByte(0);
    }
}
