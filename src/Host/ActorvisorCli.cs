using System.CommandLine;
using System.Text.RegularExpressions;
using Actorvisor.Host.Guest;
using Actorvisor.Host.Vm;
using Actorvisor.Kernel.Cpu;

namespace Actorvisor.Host;

/// <summary>
/// The `actorvisor` command line. <see cref="Run"/> is the whole program with its streams passed in, so
/// tests run it in-process; Program.Main passes the real ones.
/// </summary>
public static partial class ActorvisorCli
{
    /// <param name="stdin">The console's input (null: none); its bytes reach the guest's COM1 with <c>--serial stdio</c>.</param>
    public static int Run(string[] args, Stream stdout, TextWriter stderr, ConsoleInput? stdin = null)
    {
        var kernel = new Option<string>("--kernel", "-k")
        {
            Description = "Kernel to boot: a Linux bzImage or vmlinux, a Multiboot kernel, an ELF64 (entered in long mode), an ELF32 (flat protected mode) or a flat binary (real mode at 0000:7C00). Without it, the default guest (Debian's cloud kernel and a busybox initramfs, fetched on first use)",
        };
        var initrd = new Option<string>("--initrd")
        {
            Description = "An initial ramdisk for a Linux kernel",
        };
        var serial = new Option<string>("--serial")
        {
            Description = "The console (COM1): 'stdio' (output to stdout, input from stdin; Ctrl-A x quits on a terminal) or 'file:PATH' (output only)",
            DefaultValueFactory = _ => "stdio",
        };
        serial.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>();
            if (v is not "stdio" && !(v?.StartsWith("file:", StringComparison.Ordinal) == true && v.Length > 5))
                r.AddError($"--serial '{v}': expected 'stdio' or 'file:PATH'");
        });
        var cpus = new Option<CpuTopology>("--cpus", "-c")
        {
            Description = "vCPUs and their topology, as bhyve: [[cpus=]n][,sockets=n][,cores=n][,threads=n][,maxcpus=n]",
            DefaultValueFactory = _ => CpuTopology.Single,
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
                if (CpuTopology.TryParse(text, out var t, out var error)) return t!;
                r.AddError(error!);
                return CpuTopology.Single;
            },
        };
        var stats = new Option<bool>("--stats")
        {
            Description = "At the end, print to stderr the guest instructions executed, the wall time and the peak RSS",
        };
        var noReboot = new Option<bool>("--no-reboot")
        {
            Description = "Exit with status 0 when the guest reboots, instead of resetting the VM",
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
            Description = "The kernel's command line (Linux and Multiboot kernels; a Multiboot kernel gets its file name first, as QEMU passes it)",
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

        var pci = PciOptions.Create();
        var deterministic = new Option<bool>("--deterministic")
        {
            Description = "Run all vCPUs on one thread with time counted in instructions, so the same guest and input repeat exactly; prints a digest of the device accesses at the end",
        };
        var record = new Option<string>("--record")
        {
            Description = "Deterministic run: log console input with the instruction count it reached the guest at, to FILE",
        };
        var replay = new Option<string>("--replay")
        {
            Description = "Deterministic run: give the guest the input logged by --record in FILE, at the same instruction counts (live input is ignored)",
        };
        var faults = new Option<string[]>("--faults")
        {
            Description = "Fault rules to inject (a YAML scenario file; see docs/FAULTS.md); repeatable, the files' rules in order",
        };
        var supervise = new Option<string[]>("--supervise")
        {
            Description = "DEVICE=POLICY: what to do when a device actor fails (stop, resume, restart, escalate); DEVICE may end in *; repeatable",
        };
        supervise.Validators.Add(r =>
        {
            if (!DeviceSupervision.TryParse(r.GetValueOrDefault<string[]>() ?? [], out _, out var error)) r.AddError(error!);
        });
        var faultSeed = new Option<ulong?>("--fault-seed")
        {
            Description = "The seed that decides the faults (default: the file's seed, else random and printed)",
        };
        var configFile = new Option<string>("--config")
        {
            Description = "A YAML file describing one VM or several ('vms:'), keyed as these flags; flags given here override it (docs/config-file.md)",
        };
        var runDir = ControlCommands.RunDirOption();
        var run = new Command("run", "Boot a guest and run it until it halts, shuts down, fails or exits through isa-debug-exit")
            { kernel, initrd, memory, cpus, name, cmdline, module, device, serial, noReboot, stats, configFile, runDir,
              deterministic, record, replay, faults, faultSeed, supervise, pci.Slot, pci.Disk, pci.Rng, pci.Net };
        run.Validators.Add(r => pci.Validate(r));
        var telemetry = new Telemetry.TelemetryCliOptions();
        telemetry.AddTo(run);
        run.SetAction(parse =>
        {
            if (parse.GetValue(configFile) is { } configPath)
            {
                T? Given<T>(Option<T> o) => parse.GetResult(o) is { Implicit: false } ? parse.GetValue(o) : default;
                var flags = new Settings.VmSettings
                {
                    Name = Given(name), Kernel = Given(kernel), Initrd = Given(initrd), Cmdline = Given(cmdline),
                    Memory = parse.GetResult(memory) is { Implicit: false } ? parse.GetValue(memory) : null,
                    Cpus = Given(cpus), Serial = Given(serial),
                    NoReboot = parse.GetResult(noReboot) is { Implicit: false } ? parse.GetValue(noReboot) : null,
                    Modules = Given(module) is { Length: > 0 } m ? m : null,
                    Devices = Given(device) is { Length: > 0 } d ? d.Select(x => DeviceSpec.TryParse(x, out _)!).ToArray() : null,
                    Deterministic = parse.GetResult(deterministic) is { Implicit: false } ? parse.GetValue(deterministic) : null,
                    Record = Given(record), Replay = Given(replay), Faults = Given(faults), FaultSeed = Given(faultSeed),
                    Slots = Given(pci.Slot) is { Length: > 0 } sl ? sl : null,
                    Disks = Given(pci.Disk) is { Length: > 0 } dk ? dk : null,
                    Rng = parse.GetResult(pci.Rng) is { Implicit: false } ? parse.GetValue(pci.Rng) : null,
                    Nets = Given(pci.Net) is { Length: > 0 } nt ? nt : null,
                    Supervision = Given(supervise) is { Length: > 0 } sv && DeviceSupervision.TryParse(sv, out var given, out _) ? given : null,
                };
                var processFlags = telemetry.Given(parse, new Settings.ProcessSettings
                {
                    Stats = parse.GetResult(stats) is { Implicit: false } ? parse.GetValue(stats) : null, RunDir = Given(runDir),
                });
                return Settings.ConfigRun.Run(configPath, flags, processFlags, stdout, stderr, stdin);
            }
            var kernelPath = parse.GetValue(kernel);
            var initrdPath = parse.GetValue(initrd);
            var cmdlineText = parse.GetValue(cmdline);
            if (kernelPath is null)
            {
                if (initrdPath is not null)
                {
                    stderr.WriteLine("actorvisor: --initrd needs --kernel (the default guest brings its own initramfs)");
                    return (int)VmExitCode.Error;
                }
                var guest = new DebianGuest(stderr).Ensure();
                (kernelPath, initrdPath) = (guest.Kernel, guest.Initramfs);
                cmdlineText ??= GuestFiles.DefaultCmdline;
            }
            var recordPath = parse.GetValue(record);
            var replayPath = parse.GetValue(replay);
            if (recordPath is not null && replayPath is not null)
            {
                stderr.WriteLine("actorvisor: --record and --replay exclude each other");
                return (int)VmExitCode.Error;
            }
            if (replayPath is not null && !File.Exists(replayPath))
            {
                stderr.WriteLine($"actorvisor: --replay {replayPath}: no such file");
                return (int)VmExitCode.Error;
            }
            var deterministicRun = parse.GetValue(deterministic) || recordPath is not null || replayPath is not null
                ? new DeterministicRun(DeterministicRun.DefaultEpoch, recordPath, replayPath)
                : null;
            var scenario = parse.GetValue(faults) is { Length: > 0 } faultsPaths ? Actorvisor.Host.Faults.FaultScenario.LoadAll(faultsPaths) : null;
            var serialText = parse.GetValue(serial)!;
            using var serialFile = serialText.StartsWith("file:", StringComparison.Ordinal)
                ? new FileStream(serialText[5..], FileMode.Create, FileAccess.Write, FileShare.Read)
                : null;
            var config = new VmConfig(parse.GetValue(name)!, parse.GetValue(memory), kernelPath, serialFile ?? stdout)
            {
                Cmdline = cmdlineText,
                InitrdPath = initrdPath,
                Modules = (parse.GetValue(module) ?? []).Select(ParseModule).ToArray(),
                Devices = (parse.GetValue(device) ?? []).Select(d => DeviceSpec.TryParse(d, out _)!).ToArray(),
                PciDevices = pci.Resolve(parse, out _)!,
                NoReboot = parse.GetValue(noReboot),
                Topology = parse.GetValue(cpus)!,
                Input = serialFile is null ? stdin : null,
                Deterministic = deterministicRun,
                Faults = scenario,
                FaultSeed = parse.GetValue(faultSeed),
                Supervision = DeviceSupervision.TryParse(parse.GetValue(supervise) ?? [], out var supervision, out _) ? supervision : DeviceSupervision.Default,
            };
            var telemetryOptions = telemetry.Read(parse);
            using var telemetrySession = telemetryOptions.Any ? Telemetry.TelemetrySession.Start(telemetryOptions) : null;
            using var raw = config.Input is { IsTerminal: true } ? TerminalRawMode.EnterOnStdin() : null;
            var totals = new Actorvisor.Actors.Cpu.VcpuTotals();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var outcome = VmHost.RunAll([config], stderr, totals, parse.GetValue(runDir),
                defaultNamed: parse.GetResult(name) is null or { Implicit: true })[0];
            raw?.Dispose();
            if (outcome.Message is { } message) stderr.WriteLine($"actorvisor: {message}");
            if (parse.GetValue(stats)) stderr.WriteLine(RunStatistics.Format(totals, clock.Elapsed));
            return outcome.ExitStatus;
        });

        var root = new RootCommand("Actorvisor: an x86-64 virtual machine monitor built as a microkernel of actors")
            { run, GuestCommands.Build(stderr), ControlCommands.BuildCtl(stdout, stderr), ControlCommands.BuildList(stdout, stderr), Telemetry.TraceCommands.Build(stdout, stderr),
              Telemetry.TopCommand.Build(stdout, stderr) };
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
        catch (Exception e) when (e is GuestFetchException or IOException or UnauthorizedAccessException or FormatException)
        {
            stderr.WriteLine($"actorvisor: {e.Message}");
            return (int)VmExitCode.Error;
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
