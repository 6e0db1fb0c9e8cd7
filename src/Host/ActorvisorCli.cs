using System.CommandLine;
using System.Text.RegularExpressions;
using Actorvisor.Host.Vm;

namespace Actorvisor.Host;

/// <summary>
/// The `actorvisor` command line. <see cref="Run"/> is the whole program with its streams passed in, so
/// tests run it in-process; Program.Main passes the real ones.
/// </summary>
public static partial class ActorvisorCli
{
    public static int Run(string[] args, Stream stdout, TextWriter stderr)
    {
        var kernel = new Option<string>("--kernel", "-k")
        {
            Description = "Kernel to boot: a Multiboot kernel, an ELF64 (entered in long mode), an ELF32 (flat protected mode) or a flat binary (real mode at 0000:7C00)",
            Required = true,
        };
        var memory = new Option<ulong>("--memory", "-m")
        {
            Description = "Guest RAM: a size with K, M, G or T (a bare number is MiB)",
            DefaultValueFactory = _ => VmConfig.DefaultMemorySize,
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
                if (SizeParser.TryParse(text, out var bytes, out var error)) return bytes;
                r.AddError(error!);
                return 0;
            },
        };
        var name = new Option<string>("--name")
        {
            Description = "The VM's name (its actor is /user/vm-NAME)",
            DefaultValueFactory = _ => VmConfig.DefaultName,
        };
        name.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>();
            if (v is null || !NamePattern().IsMatch(v))
                r.AddError($"VM name '{v}' must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit");
        });

        var cmdline = new Option<string>("--cmdline")
        {
            Description = "The kernel's command line (Multiboot kernels; the kernel's file name goes first, as QEMU passes it)",
        };
        var module = new Option<string[]>("--module")
        {
            Description = "A Multiboot module: FILE[,STRING] (repeatable); its string is FILE, then STRING",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var device = new Option<string[]>("--device")
        {
            Description = "An optional device: isa-debug-exit[,iobase=0xf4,iosize=4] or pc-testdev (repeatable)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        device.Validators.Add(r =>
        {
            foreach (var text in r.GetValueOrDefault<string[]>() ?? [])
                if (DeviceSpec.TryParse(text, out var error) is null) r.AddError(error!);
        });

        var run = new Command("run", "Boot a guest and run it until it halts, shuts down, fails or exits through isa-debug-exit")
            { kernel, memory, name, cmdline, module, device };
        run.SetAction(parse =>
        {
            var config = new VmConfig(parse.GetValue(name)!, parse.GetValue(memory), parse.GetValue(kernel)!, stdout)
            {
                Cmdline = parse.GetValue(cmdline),
                Modules = (parse.GetValue(module) ?? []).Select(ParseModule).ToArray(),
                Devices = (parse.GetValue(device) ?? []).Select(d => DeviceSpec.TryParse(d, out _)!).ToArray(),
            };
            var outcome = VmRunner.Run(config);
            if (outcome.Message is { } message) stderr.WriteLine($"actorvisor: {message}");
            return outcome.ExitStatus;
        });

        var root = new RootCommand("Actorvisor: an x86-64 virtual machine monitor built as a microkernel of actors") { run, GuestCommands.Build(stderr) };
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) stderr.WriteLine($"actorvisor: {e.Message}");
            stderr.WriteLine("Try 'actorvisor --help'.");
            return (int)VmExitCode.Error;
        }
        try
        {
            // Help and version text go to stdout, as users expect; the guest console does not run then.
            using var help = new StreamWriter(stdout, leaveOpen: true) { AutoFlush = true };
            return parsed.Invoke(new InvocationConfiguration { Output = help, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            stderr.WriteLine($"actorvisor: {e.GetType().Name}: {e.Message}");
            return (int)VmExitCode.Error;
        }
    }

    /// <summary>FILE[,STRING]: the string is everything after the first comma (it may hold commas itself).</summary>
    private static (string Path, string? Text) ParseModule(string text)
    {
        var comma = text.IndexOf(',');
        return comma < 0 ? (text, null) : (text[..comma], text[(comma + 1)..]);
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex NamePattern();
}
