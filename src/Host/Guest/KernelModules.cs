using System.Buffers.Binary;
using System.Text;

namespace Actorvisor.Host.Guest;

/// <summary>
/// Kernel modules of an unpacked kernel package: reads each module's <c>.modinfo</c> section (NUL-separated
/// key=value strings in the ELF object) for its name and <c>depends=</c>, and writes the <c>modules.dep</c>
/// that modprobe reads — what depmod does at package install time, which an unpacked .deb lacks.
/// </summary>
public sealed class KernelModules
{
    /// <summary>Module name (underscores) → path relative to lib/modules/VERSION.</summary>
    private readonly Dictionary<string, string> _paths = new();
    private readonly Dictionary<string, string[]> _depends = new();

    public string ModulesRoot { get; }

    /// <param name="modulesRoot">lib/modules/VERSION of the unpacked package.</param>
    public KernelModules(string modulesRoot)
    {
        ModulesRoot = modulesRoot;
        foreach (var file in Directory.EnumerateFiles(modulesRoot, "*.ko", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(modulesRoot, file).Replace('\\', '/');
            var info = ReadModinfo(File.ReadAllBytes(file));
            var name = info.TryGetValue("name", out var n) ? n : Normalize(Path.GetFileNameWithoutExtension(file));
            _paths[name] = rel;
            _depends[name] = info.TryGetValue("depends", out var d) && d.Length > 0
                ? d.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Normalize).ToArray()
                : [];
        }
    }

    public static string Normalize(string moduleName) => moduleName.Replace('-', '_');

    public bool Contains(string name) => _paths.ContainsKey(Normalize(name));
    public string PathOf(string name) => _paths[Normalize(name)];
    public IReadOnlyList<string> DependsOn(string name) => _depends[Normalize(name)];

    /// <summary>The modules and everything they need, dependencies before their users (load order).</summary>
    public IReadOnlyList<string> Closure(IEnumerable<string> names)
    {
        var order = new List<string>();
        var state = new Dictionary<string, bool>(); // false = visiting, true = done
        void Visit(string n)
        {
            n = Normalize(n);
            if (state.TryGetValue(n, out var done))
            {
                if (!done) throw new InvalidOperationException($"module dependency cycle through {n}");
                return;
            }
            if (!_paths.ContainsKey(n)) throw new InvalidOperationException($"module {n} is not in {ModulesRoot}");
            state[n] = false;
            foreach (var d in _depends[n]) Visit(d);
            state[n] = true;
            order.Add(n);
        }
        foreach (var n in names) Visit(n);
        return order;
    }

    /// <summary>
    /// modules.dep lines for the given modules: "path: dep-path dep-path ...", the dependencies listed so that
    /// the last one is loaded first (modprobe walks the list backwards), as depmod writes them.
    /// </summary>
    public string ModulesDep(IEnumerable<string> modules)
    {
        var sb = new StringBuilder();
        foreach (var m in modules.Select(Normalize).Distinct())
        {
            var deps = Closure([m]).Where(d => d != m).Reverse().Select(d => _paths[d]);
            sb.Append(_paths[m]).Append(':');
            foreach (var d in deps) sb.Append(' ').Append(d);
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Reads the key=value strings of an ELF64 object's .modinfo section.</summary>
    public static Dictionary<string, string> ReadModinfo(ReadOnlySpan<byte> elf)
    {
        var result = new Dictionary<string, string>();
        if (elf.Length < 64 || elf[0] != 0x7F || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F' || elf[4] != 2)
            throw new InvalidDataException("not an ELF64 kernel module");
        var shoff = BinaryPrimitives.ReadUInt64LittleEndian(elf[0x28..]);
        var shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3A..]);
        var shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3C..]);
        var shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3E..]);
        if (shentsize < 64 || shstrndx >= shnum || shoff + (ulong)shnum * shentsize > (ulong)elf.Length)
            throw new InvalidDataException("the module's section headers are outside the file");
        var names = Section(elf, shoff, shentsize, shstrndx);
        for (var i = 0; i < shnum; i++)
        {
            var h = elf.Slice((int)shoff + i * shentsize, shentsize);
            var nameOff = BinaryPrimitives.ReadUInt32LittleEndian(h);
            if (nameOff >= names.Length) continue;
            var rest = names[(int)nameOff..];
            var end = rest.IndexOf((byte)0);
            if (!rest[..(end < 0 ? rest.Length : end)].SequenceEqual(".modinfo"u8)) continue;
            foreach (var entry in Encoding.UTF8.GetString(Section(elf, shoff, shentsize, i)).Split('\0', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = entry.IndexOf('=');
                if (eq > 0) result.TryAdd(entry[..eq], entry[(eq + 1)..]);
            }
        }
        return result;
    }

    private const uint ShtNobits = 8;

    /// <summary>A section's bytes in the file (NOBITS sections such as .bss have none).</summary>
    private static ReadOnlySpan<byte> Section(ReadOnlySpan<byte> elf, ulong shoff, int shentsize, int i)
    {
        var h = elf.Slice((int)shoff + i * shentsize, shentsize);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h[4..]) == ShtNobits) return [];
        var off = BinaryPrimitives.ReadUInt64LittleEndian(h[0x18..]);
        var size = BinaryPrimitives.ReadUInt64LittleEndian(h[0x20..]);
        if (off + size > (ulong)elf.Length) throw new InvalidDataException("a module section lies outside the file");
        return elf.Slice((int)off, (int)size);
    }
}
