using System.CommandLine;
using Actorvisor.Host.Guest;
using Actorvisor.Host.Vm;

namespace Actorvisor.Host;

/// <summary>`actorvisor guest fetch` and `actorvisor guest initramfs`: the cached default Debian guest.</summary>
internal static class GuestCommands
{
    public static Command Build(TextWriter stderr)
    {
        var fetch = new Command("fetch", "Make (or refresh) the cached default guest from Debian's packages");
        fetch.SetAction(_ =>
        {
            var files = new DebianGuest(stderr).Fetch();
            stderr.WriteLine($"actorvisor: kernel {files.Kernel}");
            stderr.WriteLine($"actorvisor: initramfs {files.Initramfs}");
            return 0;
        });

        var init = new Option<FileInfo>("--init") { Description = "Shell script to install as /init", Required = true };
        var output = new Option<FileInfo>("--output", "-o") { Description = "Where to write the initramfs (newc cpio)", Required = true };
        var file = new Option<string[]>("--file")
        {
            Description = "Another file for the initramfs: HOST[:GUEST] (GUEST defaults to /bin/NAME; kept executable if it is on the host; repeatable)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var initramfs = new Command("initramfs", "Build an initramfs of the default guest with another /init") { init, output, file };
        initramfs.SetAction(parse =>
        {
            var script = parse.GetValue(init)!;
            if (!script.Exists)
            {
                stderr.WriteLine($"actorvisor: no such file: {script.FullName}");
                return (int)VmExitCode.Error;
            }
            var extra = new List<ExtraFile>();
            foreach (var spec in parse.GetValue(file) ?? [])
            {
                if (ExtraFile.Parse(spec, out var error) is not { } f)
                {
                    stderr.WriteLine($"actorvisor: {error}");
                    return (int)VmExitCode.Error;
                }
                extra.Add(f);
            }
            var files = new DebianGuest(stderr).Ensure();
            DebianGuest.WriteInitramfs(files, File.ReadAllText(script.FullName), parse.GetValue(output)!.FullName, extra);
            return 0;
        });

        return new Command("guest", "The default guest: Debian's cloud kernel with a busybox initramfs") { fetch, initramfs };
    }
}
